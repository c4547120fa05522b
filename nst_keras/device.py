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


def compute_dtype(precision: str) -> str:
    """The dtype the network computes in: float16 ('mixed', or 'auto' on a GPU), else float32.

    Mixed precision pays off on GPUs with tensor cores (CUDA) and on Apple GPUs; on CPUs it is
    slower (measured with TensorFlow: float16 slower, bfloat16 1.5x slower on an Intel CPU without
    AMX), so 'auto' keeps float32 there. Keras's mixed_float16 policy casts each layer's inputs and
    weights to float16 and keeps the features handed to the losses in float32, on every backend.
    """
    if precision == "mixed" or (precision == "auto" and uses_gpu()):
        return "float16"
    return "float32"
