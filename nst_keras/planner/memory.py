"""How much memory a run may use: the system's free memory, this process's resident size, the GPU's free memory.

`default_budget` is what a run is planned against when --memory-limit is not given.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

GIB = 1024**3
DEFAULT_RAM_SHARE = 0.6  # of MemAvailable, when --memory-limit is not given
DEFAULT_GPU_SHARE = 0.7  # of the GPU's free memory


def _meminfo() -> dict:
    out = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def current_rss() -> int:
    """This process's resident memory in bytes (0 where it cannot be read)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def available_ram() -> Optional[int]:
    """Memory the system can still give (MemAvailable), or None where unknown."""
    info = _meminfo()
    if "MemAvailable" in info:
        return info["MemAvailable"]
    try:  # macOS, Windows: psutil when installed
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - no psutil: unknown
        return None


def _gpu_free_bytes() -> Optional[int]:
    from ..device import nvidia_smi_bytes

    return nvidia_smi_bytes("memory.free")


@lru_cache(maxsize=2)
def default_budget(kind: str) -> tuple:
    """(bytes, how it was chosen) for 'CPU' (process peak RSS) or 'GPU' (GPU memory); fixed per process."""
    if kind == "GPU":
        free = _gpu_free_bytes()
        if free is None:
            from .. import device

            free = device.device_info().get("memory_bytes")
        if free:
            return int(DEFAULT_GPU_SHARE * free), f"{DEFAULT_GPU_SHARE:.0%} of the GPU's free memory"
        return 4 * GIB, "4 GiB (the GPU's free memory is unknown)"
    avail = available_ram()
    if avail is None:
        return 4 * GIB, "4 GiB (free memory is unknown)"
    return int(current_rss() + DEFAULT_RAM_SHARE * avail), f"{DEFAULT_RAM_SHARE:.0%} of available memory"
