"""The JAX backend: jax.jit(jax.value_and_grad) over a stateless call of the Keras model.

JAX functions are pure: the network's weights enter the compiled function as arguments, through
keras.StatelessScope (what Model.stateless_call uses), so they are not baked into the program as
constants. XLA compiles once per image shape (a new scale or tile size costs a compilation; the
planner's per-shape time measures it). selection.configure_environment turned off the GPU memory
preallocation before jax was imported.
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import keras
from keras import ops

from .host import cpu_name

NAME = "jax"
FRAMEWORK = "jax"


def framework_version() -> str:
    return jax.__version__


def version_tag() -> str:
    return f"jax{jax.__version__}"


@lru_cache(maxsize=1)
def _setup() -> dict:
    devices = jax.devices()
    first = devices[0]
    if first.platform in ("gpu", "cuda", "rocm", "METAL", "metal"):
        memory = None
        try:
            memory = int(first.memory_stats().get("bytes_limit"))
        except (AttributeError, TypeError, ValueError, RuntimeError):
            pass
        return {"kind": "GPU", "name": str(first.device_kind), "memory_bytes": memory, "count": len(devices)}
    return {"kind": "CPU", "name": cpu_name(), "memory_bytes": None, "count": 0}


def device_info() -> dict:
    return dict(_setup())


def _stateless(fn, model):
    """fn(*args) as a pure function of (the model's variable values, *args)."""
    variables = list(model.variables)

    def pure(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn(*args)

    return pure, variables


def _image(image):
    return jnp.asarray(image, jnp.float32)


def uncompiled_value_and_grad(loss_fn, model):
    pure, variables = _stateless(loss_fn, model)
    grad_fn = jax.value_and_grad(pure, argnums=1, has_aux=True)

    def value_and_grad(image, content_targets, style_targets, tv_reference):
        values = [v.value for v in variables]
        (loss, parts), grad = grad_fn(values, _image(image), content_targets, style_targets, tv_reference)
        return loss, grad, parts

    value_and_grad.grad_fn = grad_fn
    value_and_grad.variables = variables
    return value_and_grad


def compile_value_and_grad(loss_fn, model, content_layers=(), style_layers=()):
    """(image (1, H, W, 3), content targets, style Grams, tv reference) -> (loss, gradient, parts)."""
    eager = uncompiled_value_and_grad(loss_fn, model)
    compiled = jax.jit(eager.grad_fn)
    variables = eager.variables

    def value_and_grad(image, content_targets, style_targets, tv_reference):
        values = [v.value for v in variables]
        (loss, parts), grad = compiled(values, _image(image), content_targets, style_targets, tv_reference)
        return loss, grad, parts

    return value_and_grad


def compile_features(features_fn, model):
    pure, variables = _stateless(features_fn, model)
    compiled = jax.jit(pure)
    return lambda image: compiled([v.value for v in variables], _image(image))


def to_numpy(tensor):
    return ops.convert_to_numpy(tensor)


def sync(tensor) -> None:
    jax.block_until_ready(tensor)


def reset_peak_memory() -> None:
    """JAX keeps a process-wide peak that cannot be reset: measure the larger size last."""


def peak_memory_bytes() -> float:
    try:
        stats = jax.devices()[0].memory_stats() or {}
        return float(stats.get("peak_bytes_in_use", 0) - stats.get("bytes_in_use", 0))
    except (AttributeError, RuntimeError):
        return 0.0


def is_out_of_memory(error: BaseException) -> bool:
    return "RESOURCE_EXHAUSTED" in str(error) or type(error).__name__ == "OutOfMemoryError"
