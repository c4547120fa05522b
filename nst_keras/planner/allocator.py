"""TensorFlow's CPU allocator: pooled (fast, keeps what it once held) or lean (gives memory back), chosen per run.

The switch must happen before TensorFlow's first tensor work; see the comment below.
"""

from __future__ import annotations

import os
import sys

# TensorFlow's CPU memory ---------------------------------------------------------------------------
#
# With oneDNN (TensorFlow's default on x86 CPUs) the CPU allocator is a pool (BFC) that never gives
# memory back and grows in doubling regions: after a few scales and tiles of different shapes its
# resident size was up to twice what the run ever held at once (measured: 15.4 GB peak for a run
# planned at 7.6 GB). "Lean" mode makes oneDNN allocate from the system (malloc) and makes glibc serve
# every block above 1 MiB with its own mapping, returned on free, so the resident size follows what
# is alive and the memory model holds. It costs page faults (about 15% more time per step, measured
# at 512 px), so it is switched on only for runs that come near the budget. Both settings are read
# when TensorFlow first allocates, so the choice must come before any tensor work: the engine and
# the calibration call `note_tensorflow_started()` when they begin theirs.

LEAN_ENV = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"
LEAN_MMAP_THRESHOLD = 1 << 20
LEAN_WHEN = 0.45  # of the usable budget: above this estimate the pooled allocator's growth could overrun it
POOLED_GROWTH = 2.0  # what the pooled allocator may hold for the network, relative to what is alive

_state = {"started": False, "lean": None}


def allocator_mode() -> str:
    """'lean' or 'pooled': how TensorFlow's CPU memory behaves in this process (or will, once it starts)."""
    if _state["lean"] is None:
        _state["lean"] = os.environ.get(LEAN_ENV, "").strip().lower() in ("1", "true")
    return "lean" if _state["lean"] else "pooled"


def note_tensorflow_started() -> None:
    """From now on the allocator's mode is fixed (call before the first tensor work)."""
    allocator_mode()
    _state["started"] = True


def use_lean_memory() -> bool:
    """Switch to lean mode if it is still possible; True when the process is (now) in lean mode."""
    if allocator_mode() == "lean":
        return True
    if _state["started"] or os.environ.get(LEAN_ENV, "").strip().lower() in ("0", "false"):
        return False  # too late (TensorFlow has allocated), or the user asked for the pool
    os.environ[LEAN_ENV] = "1"
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-3, LEAN_MMAP_THRESHOLD)  # M_MMAP_THRESHOLD (fixed: no dynamic raise)
            libc.mallopt(-1, 32 << 20)  # M_TRIM_THRESHOLD: give freed heap tops back too
        except (OSError, AttributeError):
            pass
    _state["lean"] = True
    return True
