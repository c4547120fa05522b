"""The feature network's facts: the layer names of each backbone, their blocks, strides, channels and sizes.

Keras's VGG16 and VGG19 share one layout: five blocks of 3x3 convolutions, each block followed
by a 2x2 pooling, with 64, 128, 256, 512 and 512 channels. Layer names are Keras's own
('block4_conv2'). Everything that reasons about the network without building it (validating
layer names, the planner's memory and time per pixel, the stride of a layer's feature grid)
reads it from here. No TensorFlow, no Keras: plain arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable

# Convolutions per block, per backbone.
CONVS_PER_BLOCK = {"vgg19": (2, 2, 4, 4, 4), "vgg16": (2, 2, 3, 3, 3)}

VGG19_CONV_LAYERS = tuple(
    f"block{b}_conv{c}" for b, n in enumerate(CONVS_PER_BLOCK["vgg19"], start=1) for c in range(1, n + 1)
)
VGG16_CONV_LAYERS = tuple(
    f"block{b}_conv{c}" for b, n in enumerate(CONVS_PER_BLOCK["vgg16"], start=1) for c in range(1, n + 1)
)
CONV_LAYERS = {"vgg19": VGG19_CONV_LAYERS, "vgg16": VGG16_CONV_LAYERS}
BACKBONES = tuple(CONV_LAYERS)  # vgg19, vgg16


def layer_block(name: str) -> int:
    """The block number N of layer 'blockN_convM' (1..5)."""
    return int(name[5])


def layer_stride(name: str) -> int:
    """How many input pixels one feature position of layer 'blockN_convM' spans (2^(N-1))."""
    return 2 ** (layer_block(name) - 1)


def block_channels(block: int) -> int:
    """Channels of every convolution in a block: 64, 128, 256, 512, 512."""
    return min(64 * 2 ** (block - 1), 512)


def deepest_layer(backbone: str, layers: Iterable[str]) -> str:
    """The layer of `layers` that comes last in the backbone (the network has to run up to it)."""
    order = CONV_LAYERS[backbone]
    return max(layers, key=order.index)


def conv_blocks(backbone: str, layers: Iterable[str]) -> list:
    """The block number of each convolution the network runs, up to the deepest of `layers` (all when none)."""
    order = CONV_LAYERS[backbone]
    deepest = max((order.index(name) for name in layers), default=len(order) - 1)
    return [layer_block(name) for name in order[: deepest + 1]]


def activation_floats(backbone: str, layers: Iterable[str]) -> float:
    """Floats per input pixel of the activations kept up to the deepest of `layers` (convolutions and pools)."""
    total = 0.0
    previous_block = 1
    for block in conv_blocks(backbone, layers):
        if block != previous_block:  # a pooling layer between blocks
            total += block_channels(previous_block) / 4**previous_block
            previous_block = block
        total += block_channels(block) / 4 ** (block - 1)
    return total


def conv_macs(backbone: str, layers: Iterable[str]) -> float:
    """Multiply-adds per input pixel of the convolutions up to the deepest of `layers` (a forward pass)."""
    total = 0.0
    previous = 3
    for block in conv_blocks(backbone, layers):
        channels = block_channels(block)
        total += 9 * previous * channels / 4 ** (block - 1)
        previous = channels
    return total
