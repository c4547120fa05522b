"""Facts about the host that every backend reports the same way (stdlib only)."""

from __future__ import annotations

import os
import subprocess
from typing import Optional


def nvidia_smi_bytes(field: str) -> Optional[int]:
    """A memory field of GPU 0 ('memory.total', 'memory.free') in bytes, from nvidia-smi; None where it cannot tell."""
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


def cpu_name() -> str:
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
