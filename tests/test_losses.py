"""losses.py: the normalised terms of the objective, against numpy written from the definitions."""

import numpy as np
import pytest
from keras import ops

from nst_keras import losses
from nst_keras.engine import _tv_reference


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), np.float64)


def test_gram_is_averaged_over_positions(rng):
    feats = rng.normal(size=(1, 5, 7, 4)).astype(np.float32)
    flat = feats.reshape(-1, 4).astype(np.float64)
    assert np.allclose(_np(losses.gram(feats)), flat.T @ flat / 35, rtol=1e-5)
    # The same texture on a canvas four times as large has the same Gram matrix.
    tiled = np.tile(feats, (1, 2, 2, 1))
    assert np.allclose(_np(losses.gram(tiled)), _np(losses.gram(feats)), rtol=1e-5)


def test_relative_squared_error_is_scale_free(rng):
    target = rng.normal(size=(1, 6, 6, 3)).astype(np.float32)
    value = target + rng.normal(0, 0.3, target.shape).astype(np.float32)
    expected = np.sum((value - target) ** 2.0) / np.sum(target.astype(np.float64) ** 2)
    assert float(_np(losses.relative_squared_error(value, target))) == pytest.approx(expected, rel=1e-5)
    scaled = float(_np(losses.relative_squared_error(100 * value, 100 * target)))
    assert scaled == pytest.approx(expected, rel=1e-4)  # one weight fits any feature magnitude
    assert float(_np(losses.content_loss(target, target))) == 0.0
    assert float(_np(losses.content_loss(np.zeros_like(target), target))) == pytest.approx(1.0, rel=1e-6)


def test_style_loss_compares_grams(rng):
    feats = rng.normal(size=(1, 4, 4, 3)).astype(np.float32)
    target_gram = _np(losses.gram(feats)).astype(np.float32)
    assert float(_np(losses.style_loss(feats, target_gram))) == pytest.approx(0.0, abs=1e-6)
    assert float(_np(losses.style_loss(2 * feats, target_gram))) == pytest.approx(9.0, rel=1e-4)  # (4 - 1)^2


def test_total_variation_by_hand():
    image = np.zeros((1, 3, 4, 3), np.float32)
    image[0, :, 2:] = 10.0  # one vertical edge of height 10
    # dx: 3 rows x 3 steps x 3 channels, one step of 10 per row and channel -> 9 * 100 / 27; dy: 0
    assert float(_np(losses.total_variation(image))) == pytest.approx(900 / 27)


def test_total_loss_weights_the_normalised_terms(rng):
    image = rng.uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
    feats = {
        "a": rng.normal(size=(1, 8, 8, 2)).astype(np.float32),
        "b": rng.normal(size=(1, 4, 4, 2)).astype(np.float32),
    }
    content_targets = {"a": feats["a"] * 0.5}
    style_targets = {"b": _np(losses.gram(feats["b"] * 2)).astype(np.float32)}
    weights = {"content": 2.0, "style": {"b": 1.0}, "style_total": 3.0, "tv": 0.5}
    loss, parts = losses.total_loss(image, feats, content_targets, style_targets, weights, 10.0)
    parts = {k: float(_np(v)) for k, v in parts.items()}
    assert parts["content"] == pytest.approx(1.0, rel=1e-5)  # (a - a/2)^2 / (a/2)^2
    assert parts["style"] == pytest.approx(
        (1 - 4) ** 2 / 16, rel=1e-4
    )  # the Gram of b against a target four times as large
    tv = float(_np(losses.total_variation(image))) / 10.0
    assert parts["tv"] == pytest.approx(tv, rel=1e-5)
    assert float(_np(loss)) == pytest.approx(2.0 * parts["content"] + 3.0 * parts["style"] + 0.5 * tv, rel=1e-5)


@pytest.mark.parametrize("shape", [(5, 7), (64, 40), (700, 1000)])
def test_the_engines_chunked_tv_reference_matches_the_loss_term(rng, shape):
    # The engine computes the content's total variation in row chunks (no full-size copies) for tiled
    # scales; it must be the same number as the loss term's, floored at 1.
    image = rng.uniform(0, 255, (*shape, 3)).astype(np.float32)
    whole = float(_np(losses.total_variation(image[None])))
    assert float(_np(_tv_reference(image))) == pytest.approx(max(whole, 1.0), rel=1e-5)
    flat = np.full((*shape, 3), 9.0, np.float32)
    assert float(_np(_tv_reference(flat))) == 1.0  # a flat image: the floor
