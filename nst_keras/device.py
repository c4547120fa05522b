"""Which device TensorFlow will run on, and how it is set up (GPU memory growth, precision).

TensorFlow places work on a GPU by itself when one is visible. Here we only make that
explicit: report the device, let GPU memory grow on demand instead of grabbing it all
(so GIMP and the desktop keep theirs), and choose the compute precision.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Optional


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up chatter to warnings and errors (call before importing it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@lru_cache(maxsize=1)
def _setup() -> dict:
    quiet_tensorflow()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    info = {"kind": "CPU", "name": _cpu_name(), "memory_bytes": None, "count": len(gpus)}
    if gpus:
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised by the caller: leave it as it is
                pass
        details = {}
        try:
            details = tf.config.experimental.get_device_details(gpus[0])
        except Exception:  # noqa: BLE001 - details are cosmetic
            pass
        info.update(kind="GPU", name=details.get("device_name") or gpus[0].name)
        total = nvidia_smi_bytes("memory.total")
        if total is not None:
            info["memory_bytes"] = total
    return info


def nvidia_smi_bytes(field: str) -> Optional[int]:
    """A memory field of GPU 0 ('memory.total', 'memory.free') in bytes, from nvidia-smi; None where it cannot tell."""
    import subprocess

    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode == 0 and out.stdout.strip():
            return int(float(out.stdout.strip().splitlines()[0]) * 1024 * 1024)
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return None


def device_info() -> dict:
    """{'kind': 'GPU'|'CPU', 'name': ..., 'memory_bytes': int|None, 'count': number of GPUs}."""
    return dict(_setup())


def describe() -> str:
    """One line for people: 'GPU: NVIDIA H100 80GB HBM3' or 'CPU: Intel(R) Xeon(R) ... (2 cores)'."""
    info = device_info()
    return f"{info['kind']}: {info['name']}"


def uses_gpu() -> bool:
    return device_info()["kind"] == "GPU"


def compute_dtype(precision: str) -> str:
    """The dtype the network computes in: float16 ('mixed', or 'auto' on a GPU), else float32.

    Mixed precision pays off on GPUs with tensor cores; on CPUs it is several times slower
    (measured: bfloat16 4x slower on this project's CPU machines), so 'auto' keeps float32 there.
    """
    if precision == "mixed" or (precision == "auto" and uses_gpu()):
        return "float16"
    return "float32"


def _cpu_name() -> str:
    name = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if not name:
        import platform

        name = platform.processor() or platform.machine() or "unknown CPU"
    return f"{name} ({os.cpu_count() or '?'} cores)"
