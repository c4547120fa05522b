"""network.py: the backbones' layer names, blocks, strides and channels, and the per-pixel sizes the planner uses."""

import pytest

from nst_keras import config, network, planner


def test_activation_count_grows_with_depth_and_vgg19_keeps_more_than_vgg16():
    a = network.activation_floats("vgg19", ["block1_conv1"])
    b = network.activation_floats("vgg19", ["block3_conv1"])
    c = network.activation_floats("vgg19", ["block5_conv2"])
    assert 0 < a < b < c
    assert network.activation_floats("vgg16", ["block5_conv2"]) < c
    assert network.layer_stride("block1_conv2") == 1 and network.layer_stride("block5_conv1") == 16


def test_first_layer_sizes_by_hand():
    # block1_conv1: 64 floats a pixel kept, 3x3x3 inputs x 64 outputs multiply-adds a pixel.
    assert network.activation_floats("vgg19", ["block1_conv1"]) == 64.0
    assert network.conv_macs("vgg19", ["block1_conv1"]) == 9 * 3 * 64
    # block2_conv1 adds block1_conv2 (64), the pool (64 / 4) and 128 channels at a quarter of the pixels.
    assert network.activation_floats("vgg19", ["block2_conv1"]) == 64 + 64 + 16 + 32


def test_the_planners_reference_network_is_vgg19_to_block5_conv2():
    assert network.conv_macs("vgg19", ["block5_conv2"]) == planner.REFERENCE_MACS


def test_deepest_layer_and_blocks():
    assert network.deepest_layer("vgg19", ["block5_conv1", "block1_conv1", "block4_conv2"]) == "block5_conv1"
    assert network.conv_blocks("vgg16", ["block2_conv2"]) == [1, 1, 2, 2]
    assert len(network.conv_blocks("vgg19", [])) == 16  # no layers named: the whole network
    assert [network.block_channels(b) for b in range(1, 6)] == [64, 128, 256, 512, 512]


def test_config_keeps_the_layer_names_importable():
    assert config.CONV_LAYERS is network.CONV_LAYERS
    assert config.VGG19_CONV_LAYERS is network.VGG19_CONV_LAYERS and len(network.VGG19_CONV_LAYERS) == 16
    assert config.VGG16_CONV_LAYERS is network.VGG16_CONV_LAYERS and len(network.VGG16_CONV_LAYERS) == 13
    assert config.BACKBONES == ("vgg19", "vgg16")


@pytest.mark.parametrize("backbone", ["vgg19", "vgg16"])
def test_facts_match_the_keras_model(backbone):
    keras = pytest.importorskip("keras")
    build = {"vgg19": keras.applications.VGG19, "vgg16": keras.applications.VGG16}[backbone]
    model = build(include_top=False, weights=None, input_shape=(64, 64, 3))
    convs = [layer for layer in model.layers if "_conv" in layer.name]
    assert tuple(layer.name for layer in convs) == network.CONV_LAYERS[backbone]
    for layer in convs:
        block = network.layer_block(layer.name)
        assert layer.output.shape[-1] == network.block_channels(block)
        assert layer.output.shape[1] == 64 // network.layer_stride(layer.name)
