"""The style terms (Gram, mean and covariance), their StyleConfig settings, and strength at the config level."""

import dataclasses

import numpy as np
import pytest

from nst_keras import StyleConfig, engine, losses, tiling


def _features(seed, h=6, w=7, c=5, shift=0.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(1, h, w, c)) + shift).astype(np.float32)


def _image(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([127 + 100 * np.sin(x / (4 + c) + y / (9 - c)) for c in range(3)], axis=-1)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.float32)


def test_moments_are_the_mean_row_over_the_gram():
    f = _features(1)
    flat = f.reshape(-1, f.shape[-1]).astype(np.float64)
    m = np.asarray(losses.moments(f))
    assert m.shape == (6, 5)
    np.testing.assert_allclose(m[0], flat.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m[1:], flat.T @ flat / len(flat), rtol=1e-5, atol=1e-6)


def test_mean_cov_loss_is_the_relative_error_of_mean_and_covariance():
    f, g = _features(1), _features(2, h=9, w=4, shift=0.7)
    loss = float(losses.mean_cov_loss(f, losses.moments(g)))

    def stats(a):
        flat = a.reshape(-1, a.shape[-1]).astype(np.float64)
        mu = flat.mean(0)
        return mu, (flat - mu).T @ (flat - mu) / len(flat)

    (mf, cf), (mg, cg) = stats(f), stats(g)
    expected = np.sum((mf - mg) ** 2) / np.sum(mg**2) + np.sum((cf - cg) ** 2) / np.sum(cg**2)
    assert loss == pytest.approx(expected, rel=1e-4)
    assert float(losses.mean_cov_loss(g, losses.moments(g))) == pytest.approx(0.0, abs=1e-5)


def test_mean_cov_sees_a_shift_that_keeps_the_covariance_and_gram_sees_it_too():
    # The two terms differ: a pure shift of the mean costs mean_cov only its mean part.
    f = _features(3)
    shifted = f + 2.0
    mc = float(losses.mean_cov_loss(shifted, losses.moments(f)))
    flat = f.reshape(-1, 5).astype(np.float64)
    mu = flat.mean(0)
    assert mc == pytest.approx(np.sum(4.0 * np.ones(5)) / np.sum(mu**2), rel=1e-3)  # covariance part is 0
    assert float(losses.style_loss(shifted, losses.gram(f))) > 0.1


def test_total_loss_uses_the_configured_style_term():
    f = {"a": _features(1)}
    target = {"a": _features(2, shift=0.5)}
    weights = {"content": 0.0, "style": {"a": 1.0}, "style_total": 1.0, "tv": 0.0}
    image = np.zeros((1, 8, 8, 3), np.float32)
    _, gram_parts = losses.total_loss(image, f, {}, {"a": losses.gram(target["a"])}, weights, 1.0)
    mc_weights = dict(weights, style_loss="mean_cov")
    _, mc_parts = losses.total_loss(image, f, {}, {"a": losses.moments(target["a"])}, mc_weights, 1.0)
    assert float(gram_parts["style"]) == pytest.approx(float(losses.style_loss(f["a"], losses.gram(target["a"]))))
    assert float(mc_parts["style"]) == pytest.approx(float(losses.mean_cov_loss(f["a"], losses.moments(target["a"]))))


def test_mean_cov_targets_in_windows_match_the_whole_image():
    from nst_keras.features import cached_extractor
    from nst_keras.gradient import Objective

    cfg = StyleConfig(weights="random", style_loss="mean_cov")
    layers = tuple(dict.fromkeys(cfg.content_layers + cfg.style_layers))
    ex = cached_extractor(cfg.backbone, layers, cfg.pooling, "random", "float32")
    obj = Objective.from_config(ex, cfg)
    style = _image(300, 410, 4)
    whole = obj.style_grams(style)
    pieces = engine._style_grams(obj, style, 200 * 200)
    assert len(tiling.gram_windows(300, 410, 200 * 200)) > 1
    for name in obj.style_layers:
        a, b = whole[name].numpy(), pieces[name].numpy()
        assert a.shape == (a.shape[1] + 1, a.shape[1])
        assert np.abs(a - b).max() / np.abs(a).max() < 0.05, name


# Settings ----------------------------------------------------------------------------------------


def test_style_loss_and_strength_are_validated_with_clear_messages():
    with pytest.raises(ValueError, match="style_loss: expected one of gram, mean_cov, received 'w3'"):
        StyleConfig(style_loss="w3").validate()
    for bad in (-1, 100.5, float("nan"), True, "50"):
        with pytest.raises(ValueError, match="strength: expected a number from 0 to 100, received"):
            StyleConfig(strength=bad).validate()
    StyleConfig(strength=0).validate()
    StyleConfig(strength=100).validate()


def test_strength_sets_the_style_weight_on_a_log_scale():
    base = StyleConfig(style_weight=4.0)
    assert base.effective_style_weight() == pytest.approx(4.0)  # 50: style_weight as set
    by = {s: dataclasses.replace(base, strength=s).effective_style_weight() for s in (0, 25, 50, 75, 100)}
    assert by[0] == pytest.approx(0.04) and by[100] == pytest.approx(400.0)
    assert by[25] == pytest.approx(0.4) and by[75] == pytest.approx(40.0)
    values = [by[s] for s in sorted(by)]
    assert all(a < b for a, b in zip(values, values[1:]))


def test_the_objective_weighs_the_style_by_the_strength():
    from nst_keras.features import cached_extractor
    from nst_keras.gradient import Objective

    cfg = StyleConfig(weights="random", strength=75.0, style_weight=2.0, style_loss="mean_cov")
    layers = tuple(dict.fromkeys(cfg.content_layers + cfg.style_layers))
    obj = Objective.from_config(cached_extractor(cfg.backbone, layers, cfg.pooling, "random", "float32"), cfg)
    assert obj.weights["style_total"] == pytest.approx(20.0)
    assert obj.weights["style_loss"] == "mean_cov"


def test_default_style_layers_and_content_layers_exist_in_both_backbones():
    from nst_keras.config import CONV_LAYERS

    cfg = StyleConfig()
    for backbone in ("vgg19", "vgg16"):
        dataclasses.replace(cfg, backbone=backbone).validate()
        assert set(cfg.content_layers + cfg.style_layers) <= set(CONV_LAYERS[backbone])


def test_default_layer_weights_follow_other_style_layers_at_the_same_ratios():
    cfg = StyleConfig(style_layers=("block1_conv1", "block2_conv1", "block4_conv1")).validate()
    w = cfg.style_layer_weight_map()
    assert w == pytest.approx({"block1_conv1": 16 / 21, "block2_conv1": 4 / 21, "block4_conv1": 1 / 21})
    with pytest.raises(ValueError, match="style_layer_weights: expected 3 weights"):
        dataclasses.replace(cfg, style_layer_weights=(1.0, 2.0)).validate()


def test_the_default_recipe_is_the_one_the_gallery_chose():
    cfg = StyleConfig()
    assert cfg.content_layers == ("block4_conv2",)
    assert cfg.style_loss == "mean_cov"
    weights = cfg.style_layer_weight_map()
    assert list(weights.values()) == pytest.approx([256 / 341, 64 / 341, 16 / 341, 4 / 341, 1 / 341])
    assert cfg.strength == 50.0 and cfg.effective_style_weight() == cfg.style_weight
