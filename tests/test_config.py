"""config.py: StyleConfig's defaults, its derived values and the one-line messages of validate()."""

import dataclasses

import pytest

from nst_keras.config import RANDOM_WEIGHTS, StyleConfig


def test_optimizer_settings_per_scale():
    auto = StyleConfig()
    assert tuple(auto.optimizer_at(0)) == ("adam", 6, 5.0)  # from the photo: Adam on a pyramid
    assert tuple(auto.optimizer_at(1)) == tuple(auto.optimizer_at(3)) == ("lbfgs", 1, 2.0)  # warm starts: L-BFGS
    assert tuple(StyleConfig(optimizer="lbfgs").optimizer_at(0)) == ("lbfgs", 1, 2.0)
    assert tuple(StyleConfig(optimizer="adam").optimizer_at(2)) == ("adam", 6, 5.0)
    assert tuple(StyleConfig(optimizer="adam", pyramid_levels=1).optimizer_at(0)) == ("adam", 1, 2.0)
    explicit = StyleConfig(pyramid_levels=3, learning_rate=7.0)  # set values apply wherever they can
    assert tuple(explicit.optimizer_at(0)) == ("adam", 3, 7.0) and tuple(explicit.optimizer_at(1)) == ("lbfgs", 3, 7.0)
    for bad in ({"pyramid_levels": 0}, {"learning_rate": -1.0}, {"optimizer": "sgd"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            StyleConfig(**bad).validate()


def test_the_defaults_are_valid_and_frozen():
    cfg = StyleConfig()
    assert cfg.validate() is cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.style_weight = 3.0  # type: ignore[misc]
    data = cfg.to_dict()
    assert data["style_layers"] == list(cfg.style_layers) and data["backbone"] == "vgg19"
    assert StyleConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}) == cfg


@pytest.mark.parametrize(
    "change, message",
    [
        ({"backbone": "resnet"}, "backbone: expected one of vgg19, vgg16, received 'resnet'"),
        ({"pooling": "min"}, "pooling: expected one of max, avg, received 'min'"),
        ({"preset": "ultra"}, "preset: expected one of draft, normal, high, received 'ultra'"),
        ({"precision": "float64"}, "precision: expected one of auto, float32, mixed, bfloat16, received 'float64'"),
        ({"preserve_colors": "yes"}, "preserve_colors: expected one of luminance, histogram, received 'yes'"),
        ({"max_size": -1}, "max_size: expected a whole number >= 0, received -1"),
        ({"max_size": 512.5}, "max_size: expected a whole number >= 0, received 512.5"),
        ({"min_size": 8}, "min_size: expected a whole number >= 16, received 8"),
        ({"iterations": True}, "iterations: expected a whole number >= 1, received True"),
        ({"lbfgs_history": 0}, "lbfgs_history: expected a whole number >= 1, received 0"),
        ({"tile_size": 32}, "tile_size: expected a whole number >= 64, received 32"),
        ({"pixel_limit": 0}, "pixel_limit: expected a whole number >= 1, received 0"),
        ({"tv_weight": float("nan")}, "tv_weight: expected a number >= 0, received nan"),
        ({"content_weight": "1"}, "content_weight: expected a number >= 0, received '1'"),
        ({"style_scale": 0.0}, "style_scale: expected a number > 0, received 0.0"),
        ({"memory_limit": -2.0}, "memory_limit: expected a number > 0, received -2.0"),
        ({"learning_rate": float("inf")}, "learning_rate: expected a number > 0, received inf"),
        ({"seed": -3}, "seed: expected a whole number >= 0, received -3"),
        ({"init": ""}, "init: expected 'content', 'noise' or an image file path, received ''"),
        ({"content_layers": ()}, "content_layers: expected at least one layer name, received none"),
        ({"style_layers": ("block6_conv1",)}, "style_layers: unknown layer 'block6_conv1' for backbone vgg19"),
        (
            {"style_layer_weights": (1.0, 2.0)},
            "style_layer_weights: expected 5 weights (one per style layer), received 2",
        ),
        ({"style_layer_weights": (0.0,) * 5}, "style_layer_weights: expected at least one weight above 0"),
        ({"style_layer_weights": (1.0, 1.0, 1.0, 1.0, -1.0)}, "style_layer_weights: expected a number >= 0"),
        ({"content_weight": 0.0, "style_weight": 0.0}, "content_weight and style_weight are both 0"),
        ({"look": "strong"}, "look: expected one of photo, painterly, received 'strong'"),
    ],
)
def test_validate_names_the_setting_what_was_expected_and_received(change, message):
    with pytest.raises(ValueError) as exc:
        dataclasses.replace(StyleConfig(), **change).validate()
    text = str(exc.value)
    assert text.startswith(message) and "\n" not in text


def test_style_blend_is_checked_against_the_number_of_styles():
    cfg = StyleConfig(style_blend=(1.0, 3.0))
    cfg.validate()  # the number of styles is not known: not checked
    cfg.validate(num_styles=2)
    with pytest.raises(ValueError, match=r"style_blend: expected 3 weights \(one per style image\), received 2"):
        cfg.validate(num_styles=3)
    assert cfg.style_blend_weights(2) == [0.25, 0.75]
    assert StyleConfig().style_blend_weights(4) == [0.25] * 4


def test_style_layer_shares_sum_to_one():
    cfg = StyleConfig(style_layer_weights=(4.0, 3.0, 2.0, 1.0, 0.0))
    shares = cfg.style_layer_weight_map()
    assert list(shares) == list(cfg.style_layers) and sum(shares.values()) == pytest.approx(1.0)
    assert shares["block1_conv1"] == pytest.approx(0.4) and shares["block5_conv1"] == 0.0
    default = StyleConfig().style_layer_weight_map()  # 256:64:16:4:1, shallow layers first
    assert list(default.values()) == pytest.approx([w / 341 for w in (256, 64, 16, 4, 1)])


def test_a_look_sets_the_layer_split_and_where_strength_50_sits():
    photo, painterly = StyleConfig(), StyleConfig(look="painterly")
    assert photo.look == "photo" and photo.effective_style_weight() == photo.style_weight
    # painterly is the setting measured against the peer: the split 256:160:4:0.5:0.1 at the photo look's 91
    spelled_out = StyleConfig(strength=91.0, style_layer_weights=(256.0, 160.0, 4.0, 0.5, 0.1))
    assert painterly.style_layer_weight_map() == spelled_out.style_layer_weight_map()
    assert painterly.effective_style_weight() == pytest.approx(spelled_out.effective_style_weight(), rel=1e-12)
    assert painterly.effective_style_weight() == pytest.approx(10.0 * 10 ** (41 / 25), rel=1e-12)
    # strength moves the look: 25 more is 10x, as with the photo look
    stronger = StyleConfig(look="painterly", strength=75.0)
    assert stronger.effective_style_weight() == pytest.approx(10 * painterly.effective_style_weight(), rel=1e-12)
    # an explicit split wins over the look's, even one equal to the photo look's, as a tuple or a list
    mine = StyleConfig(look="painterly", style_layer_weights=(1.0, 1.0, 1.0, 1.0, 0.0))
    assert list(mine.style_layer_weight_map().values()) == pytest.approx([0.25] * 4 + [0.0])
    for typed in ((256, 64, 16, 4, 1), [256.0, 64.0, 16.0, 4.0, 1.0]):
        explicit = StyleConfig(look="painterly", style_layer_weights=typed).validate()
        assert explicit.style_layer_weight_map() == photo.style_layer_weight_map()
    assert StyleConfig(look="painterly", style_layer_weights=None).style_layer_weight_map()["block5_conv1"] == 0.2
    # other style layers (any number, five included) take each layer 4x the next, whatever the look
    five = ("block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1")
    for layers in (five, ("block1_conv1", "block2_conv1", "block3_conv1")):
        shares = StyleConfig(look="painterly", style_layers=layers).validate().style_layer_weight_map()
        n = len(layers)
        assert list(shares.values()) == pytest.approx(
            [4.0 ** (n - 1 - i) / sum(4.0**k for k in range(n)) for i in range(n)]
        )
    # to_dict and back (JSON records, the bench's caches) keep the look's split
    for cfg in (photo, painterly, StyleConfig(look="painterly", style_layers=five)):
        again = StyleConfig(**cfg.to_dict()).validate()
        assert again.style_layer_weight_map() == cfg.style_layer_weight_map()
    with pytest.raises(ValueError, match="style_layer_weights: expected 3 weights"):  # explicit: checked
        StyleConfig(style_layers=five[:3], style_layer_weights=(256, 64, 16, 4, 1)).validate()


def test_the_weights_file_falls_back_to_the_environment(monkeypatch):
    monkeypatch.delenv("NST_KERAS_WEIGHTS", raising=False)
    assert StyleConfig().resolved_weights() is None
    monkeypatch.setenv("NST_KERAS_WEIGHTS", RANDOM_WEIGHTS)
    assert StyleConfig().resolved_weights() == RANDOM_WEIGHTS
    assert StyleConfig(weights="/tmp/mine.h5").resolved_weights() == "/tmp/mine.h5"  # the setting wins


def test_every_field_carries_the_command_lines_metadata():
    for f in dataclasses.fields(StyleConfig):
        assert f.metadata.get("help"), f"{f.name} has no help text for the command line"
