"""The VGG feature extractor: keras.applications' VGG19/VGG16, frozen, cut at the deepest layer used.

Only the layers up to the deepest content or style layer are kept (the rest of the network
would cost time and memory for nothing), max pooling can be swapped for average pooling
(Gatys et al. found it gives slightly smoother results), and the convolutions can run in mixed
float16 (GPUs) or mixed bfloat16 (CPUs with AMX or AVX512_BF16) while the features handed to the
losses stay float32.

The first convolution pads the image by repeating its edge pixels instead of with zeros (as
crowsonkb/style-transfer-pytorch does): zero padding is a frame of the ImageNet mean colour
around the picture, which the style term then "paints" into dark and light blotches along the
borders and in the corners (measured on the gallery: HED edge correlation with the photo 0.77 ->
0.92 on chelsea + hatching at 384 px; bench/results/border-384.log has every cell). Deeper layers keep their
zero padding, as trained.
"""

from __future__ import annotations

from functools import lru_cache

from .backend.keras_api import keras, ops
from .config import CONV_LAYERS, RANDOM_WEIGHTS

# Caffe-style ImageNet preprocessing used by Keras's VGG weights: BGR, minus the mean pixel.
VGG_MEAN_BGR = (103.939, 116.779, 123.68)

# The compute dtype (nst_keras.device.compute_dtype) -> the Keras dtype policy of every layer: the
# mixed policies keep the weights in float32 and compute in the half type.
POLICIES = {"float32": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}

_APPLICATIONS = {
    "vgg19": keras.applications.VGG19,
    "vgg16": keras.applications.VGG16,
}


def deepest_layer(backbone: str, layers) -> str:
    """The layer among `layers` that comes last in the network."""
    order = CONV_LAYERS[backbone]
    unknown = [name for name in layers if name not in order]
    if unknown:
        raise ValueError(f"unknown layer {unknown[0]!r} for {backbone}; expected one of {', '.join(order)}")
    return max(layers, key=order.index)


def preprocess(rgb):
    """RGB in 0..255 (N, H, W, 3) -> the network's input (BGR minus the ImageNet mean)."""
    bgr = ops.flip(rgb, axis=-1)
    return bgr - ops.convert_to_tensor(VGG_MEAN_BGR, dtype=bgr.dtype)


class FeatureExtractor:
    """Maps an RGB image batch (N, H, W, 3) in 0..255 to {layer name: float32 features}."""

    def __init__(
        self,
        backbone: str,
        layers,
        pooling: str = "max",
        weights_path: str = RANDOM_WEIGHTS,
        dtype: str = "float32",
        seed: int = 0,
    ):
        self.backbone = backbone
        self.layers = tuple(dict.fromkeys(layers))
        self.pooling = pooling
        self.dtype = dtype
        self.model = _build(backbone, self.layers, pooling, dtype, seed)
        if weights_path != RANDOM_WEIGHTS:
            from .weights import load_weights

            load_weights(self.model, weights_path)
        self.model.trainable = False

    def __call__(self, rgb) -> dict:
        x = preprocess(ops.cast(rgb, "float32"))
        outputs = self.model(x, training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return {name: ops.cast(out, "float32") for name, out in zip(self.layers, outputs)}


def replicate_pad(images):
    """(N, H, W, C) -> (N, H + 2, W + 2, C), the edge rows and columns repeated once.

    keras.ops.pad's "symmetric" mode with a width of 1 repeats the edge pixel on every backend
    (PyTorch's own name for it is "replicate").
    """
    return ops.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="symmetric")


def _build(backbone: str, layers, pooling: str, dtype: str, seed: int) -> keras.Model:
    """Rebuild the application's VGG up to the deepest requested layer, with our pooling and dtype."""
    if backbone not in _APPLICATIONS:
        raise ValueError(f"backbone: expected one of {', '.join(_APPLICATIONS)}, received {backbone!r}")
    last = deepest_layer(backbone, layers)
    keras.utils.set_random_seed(seed)  # random weights (plumbing tests) are reproducible
    base = _APPLICATIONS[backbone](include_top=False, weights=None, input_shape=(None, None, 3))
    policy = POLICIES.get(dtype)
    if policy is None:
        raise ValueError(f"dtype: expected one of {', '.join(POLICIES)}, received {dtype!r}")

    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = inputs
    outputs = {}
    for layer in base.layers[1:]:
        config = layer.get_config()
        config["dtype"] = policy
        if layer.name == "block1_conv1":  # edge-replicating padding (module docstring)
            x = keras.layers.Lambda(replicate_pad, name="block1_pad", dtype=policy)(x)
            config["padding"] = "valid"
        if isinstance(layer, keras.layers.MaxPooling2D) and pooling == "avg":
            config.pop("name", None)
            new = keras.layers.AveragePooling2D(
                pool_size=config["pool_size"],
                strides=config["strides"],
                padding=config["padding"],
                name=layer.name,
                dtype=policy,
            )
        else:
            new = layer.__class__.from_config(config)
        x = new(x)
        if layer.name in layers:
            outputs[layer.name] = x
        if layer.name == last:
            break
    return keras.Model(inputs, [outputs[name] for name in layers], name=f"{backbone}_features")


@lru_cache(maxsize=4)
def cached_extractor(
    backbone: str, layers: tuple, pooling: str, weights_path: str, dtype: str, seed: int = 0
) -> FeatureExtractor:
    """An extractor reused across runs in one process (building one costs about a second)."""
    return FeatureExtractor(backbone, layers, pooling, weights_path, dtype, seed)
