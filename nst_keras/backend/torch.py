"""The PyTorch backend: torch.autograd for the image's gradient, no_grad forward passes, CUDA or MPS.

Keras's torch backend puts tensors on CUDA when torch sees an NVIDIA GPU, else on Apple's GPU
(MPS), else on the CPU; this module reports that device and its memory. The gradient is taken
with torch.autograd.grad with respect to the image only (the frozen weights have no grad).
torch.compile is used only with NST_KERAS_TORCH_COMPILE=1: on this project's CPUs it was no
faster than eager mode and costs a compilation per image size (bench/bench_backends.py).
selection.configure_environment set OMP_WAIT_POLICY=PASSIVE and the CUDA allocator's
expandable segments before torch was imported.
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch
from keras import ops

from .host import cpu_name

NAME = "torch"
FRAMEWORK = "torch"
COMPILE_ENV = "NST_KERAS_TORCH_COMPILE"


def framework_version() -> str:
    return torch.__version__


def version_tag() -> str:
    return f"torch{torch.__version__}"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


@lru_cache(maxsize=1)
def _setup() -> dict:
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return {
            "kind": "GPU",
            "name": torch.cuda.get_device_name(0),
            "memory_bytes": int(props.total_memory),
            "count": torch.cuda.device_count(),
            "torch_device": "cuda",
        }
    if _mps_available():
        memory = None
        try:
            memory = int(torch.mps.recommended_max_memory())
        except (AttributeError, RuntimeError):
            pass
        return {"kind": "GPU", "name": "Apple GPU (MPS)", "memory_bytes": memory, "count": 1, "torch_device": "mps"}
    return {"kind": "CPU", "name": cpu_name(), "memory_bytes": None, "count": 0, "torch_device": "cpu"}


def device_info() -> dict:
    info = dict(_setup())
    info.pop("torch_device")
    return info


def _device() -> str:
    return _setup()["torch_device"]


def _image(image) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        return image.detach().to(_device(), torch.float32)
    return torch.tensor(image, dtype=torch.float32, device=_device())


def uncompiled_value_and_grad(loss_fn, model=None):
    def value_and_grad(image, content_targets, style_targets, tv_reference):
        x = _image(image).requires_grad_(True)
        loss, parts = loss_fn(x, content_targets, style_targets, tv_reference)
        (grad,) = torch.autograd.grad(loss, x)
        return loss.detach(), grad, {k: v.detach() for k, v in parts.items()}

    return value_and_grad


def compile_value_and_grad(loss_fn, model, content_layers=(), style_layers=()):
    """(image (1, H, W, 3), content targets, style Grams, tv reference) -> (loss, gradient, parts)."""
    if os.environ.get(COMPILE_ENV, "") not in ("", "0"):
        loss_fn = torch.compile(loss_fn, dynamic=True)
    return uncompiled_value_and_grad(loss_fn, model)


def compile_features(features_fn, model=None):
    def features(image):
        with torch.no_grad():
            return features_fn(_image(image))

    return features


def to_numpy(tensor):
    if isinstance(tensor, torch.Tensor):
        return tensor.detach().cpu().numpy()
    return ops.convert_to_numpy(tensor)


def sync(tensor) -> None:
    if _device() == "cuda":
        torch.cuda.synchronize()
    elif _device() == "mps":
        torch.mps.synchronize()


def reset_peak_memory() -> None:
    if _device() == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_memory_bytes() -> float:
    """CUDA memory the last measured work took at its peak beyond what stays allocated (0: unknown, as on MPS)."""
    if _device() == "cuda":
        return float(torch.cuda.max_memory_allocated() - torch.cuda.memory_allocated())
    return 0.0


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, getattr(torch, "OutOfMemoryError", ())) or type(error).__name__ == "OutOfMemoryError":
        return True
    # MPS raises a RuntimeError: "MPS backend out of memory ..."
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
