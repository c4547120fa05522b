"""pyramid.py: the levels of the pyramid parametrisation, compose and its exact adjoint, the clip into range."""

import numpy as np
import pytest

from nst_keras.pyramid import Pyramid, level_shapes


def test_level_shapes_halve_and_stop_before_tiny_levels():
    assert level_shapes(341, 512, 4) == [(341, 512, 3), (171, 256, 3), (86, 128, 3), (43, 64, 3)]
    assert level_shapes(20, 300, 4) == [(20, 300, 3), (10, 150, 3)]  # 5 px would be too thin
    assert level_shapes(64, 64, 1) == [(64, 64, 3)]


def test_pull_back_is_the_exact_adjoint_of_compose():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 255, (37, 53, 3)).astype(np.float32)
    pyr = Pyramid(base, 4)
    assert pyr.size == sum(h * w * c for h, w, c in pyr.shapes)
    assert np.array_equal(pyr.compose(pyr.zeros()), base)
    v = rng.normal(size=pyr.size).astype(np.float32)
    g = rng.normal(size=base.shape).astype(np.float32)
    lhs = float(np.dot(pyr.pull_back(g).astype(np.float64), v))
    rhs = float(np.sum(g.astype(np.float64) * (pyr.compose(v) - base)))
    assert lhs == pytest.approx(rhs, rel=1e-4)
    # a coarse level moves a neighbourhood, not one pixel
    one = pyr.zeros()
    one[pyr.offsets[2] + (5 * 14 + 7) * 3] = 1.0  # a middle pixel of the coarsest level (5x7 would be too small)
    moved = np.abs(pyr.compose(one) - base).max(axis=-1) > 1e-3
    assert len(pyr.shapes) == 3 and moved.sum() >= 6 * 6


def test_absorb_clip_puts_the_image_in_range_without_touching_coarse_levels():
    pyr = Pyramid(np.full((40, 40, 3), 128.0, np.float32), 3)
    v = np.random.default_rng(1).normal(0, 200, pyr.size).astype(np.float32)
    coarse = v[pyr.sizes[0] :].copy()
    pyr.absorb_clip(v)
    image = pyr.compose(v)
    assert image.min() >= -1e-3 and image.max() <= 255.0 + 1e-3
    assert np.array_equal(v[pyr.sizes[0] :], coarse)


def test_a_pyramid_of_one_level_is_the_pixels():
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 255, (33, 35, 3)).astype(np.float32)
    pyr = Pyramid(base, 1)
    assert pyr.shapes == [(33, 35, 3)] and pyr.size == base.size
    v = rng.normal(size=pyr.size).astype(np.float32)
    assert np.allclose(pyr.compose(v), base + v.reshape(base.shape))
    g = rng.normal(size=base.shape).astype(np.float32)
    assert np.allclose(pyr.pull_back(g), g.reshape(-1))
