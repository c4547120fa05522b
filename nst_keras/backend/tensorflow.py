"""The TensorFlow backend: a tf.function around a GradientTape, GPU memory growth, TF's memory statistics.

The compiled functions take the image and the targets with unknown height and width, so a new
image size or tile does not retrace them (measured: XLA's jit_compile and eager mode were both
slower on CPU, README "Speed").
"""

from __future__ import annotations

from functools import lru_cache

import tensorflow as tf
from keras import ops

from .host import cpu_name, nvidia_smi_bytes

NAME = "tensorflow"
FRAMEWORK = "tensorflow"


def framework_version() -> str:
    return tf.__version__


def version_tag() -> str:
    """Part of the planner's calibration key: a new framework version is measured again."""
    return f"tf{tf.__version__}"


@lru_cache(maxsize=1)
def _setup() -> dict:
    gpus = tf.config.list_physical_devices("GPU")
    info = {"kind": "CPU", "name": cpu_name(), "memory_bytes": None, "count": len(gpus)}
    if gpus:
        for gpu in gpus:
            try:  # grow on demand instead of taking all GPU memory: GIMP and the desktop keep theirs
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised by the caller: leave it as it is
                pass
        details = {}
        try:
            details = tf.config.experimental.get_device_details(gpus[0])
        except Exception:  # noqa: BLE001 - details are cosmetic
            pass
        info.update(kind="GPU", name=details.get("device_name") or gpus[0].name)
        info["memory_bytes"] = nvidia_smi_bytes("memory.total")
    return info


def device_info() -> dict:
    return dict(_setup())


def _specs(content_layers, style_layers):
    image = tf.TensorSpec([1, None, None, 3], tf.float32)
    c_spec = {name: tf.TensorSpec([1, None, None, None], tf.float32) for name in content_layers}
    s_spec = {name: tf.TensorSpec([None, None], tf.float32) for name in style_layers}
    return [image, c_spec, s_spec, tf.TensorSpec([], tf.float32)]


def uncompiled_value_and_grad(loss_fn, model=None):
    def value_and_grad(image, content_targets, style_targets, tv_reference):
        image = tf.convert_to_tensor(image, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss, parts = loss_fn(image, content_targets, style_targets, tv_reference)
        return loss, tape.gradient(loss, image), parts

    return value_and_grad


def compile_value_and_grad(loss_fn, model, content_layers, style_layers):
    """(image (1, H, W, 3), content targets, style Grams, tv reference) -> (loss, gradient, parts)."""
    compiled = tf.function(uncompiled_value_and_grad(loss_fn), input_signature=_specs(content_layers, style_layers))

    def value_and_grad(image, content_targets, style_targets, tv_reference):
        return compiled(tf.convert_to_tensor(image, tf.float32), content_targets, style_targets, tv_reference)

    return value_and_grad


def compile_features(features_fn, model=None):
    compiled = tf.function(features_fn, input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    return lambda image: compiled(tf.convert_to_tensor(image, tf.float32))


def to_numpy(tensor):
    return ops.convert_to_numpy(tensor)


def sync(tensor) -> None:
    """Wait for a tensor's value (GPU work is asynchronous)."""
    tensor.numpy()


def reset_peak_memory() -> None:
    try:
        tf.config.experimental.reset_memory_stats("GPU:0")
    except (ValueError, RuntimeError):
        pass


def peak_memory_bytes() -> float:
    """GPU memory the last measured work took at its peak beyond what stays allocated (0 where unknown)."""
    try:
        info = tf.config.experimental.get_memory_info("GPU:0")
        return float(info["peak"] - info["current"])
    except (ValueError, RuntimeError, KeyError):
        return 0.0


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, tf.errors.ResourceExhaustedError)
