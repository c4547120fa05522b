"""The engine's seam to Keras's backends: TensorFlow, PyTorch and JAX, one module each.

Everything in the engine is written with keras.ops except what no Keras API covers: the
compiled value-and-gradient with respect to the image, a compiled forward pass, device
discovery, the allocator's settings, GPU memory statistics and out-of-memory errors. Each
backend module here gives those, with the same functions:

    NAME, framework_version(), version_tag(), device_info(),
    compile_value_and_grad(loss_fn, model), compile_features(features_fn, model),
    uncompiled_value_and_grad(loss_fn, model), to_numpy(tensor), sync(tensor),
    reset_peak_memory(), peak_memory_bytes(), is_out_of_memory(error)

Nothing outside this folder imports tensorflow, torch or jax (a test scans the source). This
package itself imports only the standard library: `select()` must run before Keras is imported.
"""

from __future__ import annotations

import importlib
from typing import Optional

from .selection import BACKENDS, CHOICES, reason, select, selected

__all__ = [
    "BACKENDS",
    "CHOICES",
    "OutOfMemory",
    "describe",
    "name",
    "reason",
    "seam",
    "select",
    "selected",
]


class OutOfMemory(MemoryError):
    """The device ran out of memory during a gradient evaluation; the message says on what and what to do."""


def name() -> str:
    """The backend this process uses (chosen with 'auto' if nothing chose one yet)."""
    return selected() or select("auto")


def seam():
    """The module of the backend in use: nst_keras.backend.tensorflow, .torch or .jax."""
    return importlib.import_module(f"{__name__}.{name()}")


def out_of_memory(error: BaseException, what: str) -> Optional[OutOfMemory]:
    """The planner's clear message for `error` when it is the framework's out-of-memory error, else None."""
    module = seam()
    if not module.is_out_of_memory(error):
        return None
    info = module.device_info()
    where = "GPU memory" if info["kind"] == "GPU" else "memory"
    return OutOfMemory(
        f"out of {where} on {info['kind']}: {info['name']} during {what}: the estimate was too low for this "
        "device; expected a run that fits, try a smaller --max-size, a lower --memory-limit (smaller tiles), "
        "or close other programs"
    )


def describe() -> dict:
    """For `doctor`: backend, why it was chosen, framework and Keras versions, device, precision used by default."""
    import keras

    from .. import device

    module = seam()
    info = module.device_info()
    auto = device.auto_precision(measure=True)  # on a CPU: measured once (a few seconds), then cached
    dtype = auto["dtype"]
    return {
        "backend": module.NAME,
        "backend_reason": reason(),
        "framework": module.FRAMEWORK,
        "framework_version": module.framework_version(),
        "keras": keras.__version__,
        "device": f"{info['kind']}: {info['name']}",
        "device_kind": info["kind"],
        "gpu_count": info["count"],
        "device_memory_bytes": info["memory_bytes"],
        "mixed_precision": dtype != "float32",
        "compute_dtype": dtype,
        "precision_reason": auto["reason"],
        "precision_source": auto["source"],
    }
