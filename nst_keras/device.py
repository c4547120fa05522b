"""Which device the engine runs on, and in what precision; the framework's part is in nst_keras/backend/.

Each Keras backend places work on a GPU by itself when it sees one (CUDA; PyTorch also Apple's
MPS). Here we only make that explicit: report the device, and choose the compute precision.
The backend modules also let GPU memory grow on demand instead of grabbing it all (so GIMP and
the desktop keep theirs).
"""

from __future__ import annotations

import os

from .backend.host import nvidia_smi_bytes  # noqa: F401 - the planner's GPU free-memory probe


def quiet_tensorflow() -> None:
    """Keep TensorFlow's (and XLA's) C++ start-up chatter to warnings and errors (call before importing it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def device_info() -> dict:
    """{'kind': 'GPU'|'CPU', 'name': ..., 'memory_bytes': int|None, 'count': number of GPUs} of the backend in use."""
    from . import backend

    return backend.seam().device_info()


def describe() -> str:
    """One line for people: 'GPU: NVIDIA H100 80GB HBM3' or 'CPU: Intel(R) Xeon(R) ... (2 cores)'."""
    info = device_info()
    return f"{info['kind']}: {info['name']}"


def uses_gpu() -> bool:
    return device_info()["kind"] == "GPU"


def compute_dtype(precision: str, measure: bool = False, refresh: bool = False) -> str:
    """The dtype the network computes in: 'float16', 'bfloat16' or 'float32'.

    'mixed' is float16, 'bfloat16' is bfloat16, 'float32' is float32. 'auto' is float16 on a GPU
    (tensor cores; Apple GPUs); on a CPU it is the precision the planner's calibration found faster
    on this machine, float32 or bfloat16 (see `auto_precision`). Keras's mixed policies cast each
    layer's inputs and weights to the half type and the features handed to the losses stay float32,
    on every backend.

    Measured with TensorFlow 2.21 on a 2-core Xeon with AMX_BF16 and AVX512_BF16 (2026-12,
    bench/bench_precision.py, one value-and-gradient of the default objective at 512x341, the
    variants alternating on a shared machine; bench/results/precision-512.log): mixed bfloat16
    took 0.36x float32's time (its loss within 2e-4, its gradient within 2% of float32's), and
    mixed float16 1.3x (CPUs have no fast float16 convolution); on torch 2.13 bfloat16 took 0.45x,
    on JAX 0.10 (XLA) 0.93x, where the race keeps float32. The same cell of the gallery
    came out with equal scores in half the time (docs/precision-bf16.png). On an Intel CPU
    without AMX, bfloat16 was 1.5x slower than float32: hence a measurement, not a rule.
    """
    if precision == "mixed":
        return "float16"
    if precision == "bfloat16":
        return "bfloat16"
    if precision == "auto":
        return auto_precision(measure, refresh)["dtype"]
    return "float32"


def auto_precision(measure: bool = False, refresh: bool = False) -> dict:
    """What precision 'auto' uses here, and why: {'dtype', 'reason', 'source'}.

    On a GPU: float16. On a CPU: the faster of float32 and bfloat16 on a small objective,
    measured once per CPU and framework version and cached with the planner's calibration
    (nst_keras/planner/calibration.py `cpu_precision`); until it is measured (`measure` False
    and nothing cached), float32. `refresh` (with `measure`) races the two again.
    """
    if uses_gpu():
        return {"dtype": "float16", "reason": "a GPU: mixed float16", "source": "rule"}
    from .planner.calibration import cpu_precision

    return cpu_precision(measure=measure, refresh=refresh)
