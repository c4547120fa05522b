"""The optimisers and the pyramid parametrisation, on problems with known answers."""

import numpy as np
import pytest

from nst_keras.optimize import StopRequested, minimize
from nst_keras.pyramid import Pyramid, level_shapes


def _blurry_target(h, w, seed=0):
    """A smooth target image: what a coarse-to-fine geometry should find quickly."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    return np.stack(
        [128 + 90 * np.sin(x / (9 + c) + y / (13 + c) + rng.uniform(0, 6)) for c in range(3)], axis=-1
    ).astype(np.float32)


def _smooth_quadratic(target, smoothness=50.0):
    """Squared error to `target` + a strong smoothness term: ill-conditioned, as style transfer is."""

    def value_and_grad(x):
        d = x - target
        dy, dx = np.diff(x, axis=0), np.diff(x, axis=1)
        loss = float(np.mean(d * d) + smoothness * (np.mean(dy * dy) + np.mean(dx * dx)))
        grad = 2 * d / d.size
        gy = 2 * smoothness * dy / dy.size
        gx = 2 * smoothness * dx / dx.size
        grad[1:] += gy
        grad[:-1] -= gy
        grad[:, 1:] += gx
        grad[:, :-1] -= gx
        return loss, grad.astype(np.float32)

    return value_and_grad


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


@pytest.mark.parametrize("method, steps", [("lbfgs", 10), ("adam", 30)])
def test_pyramid_comes_closer_to_the_optimum_than_pixels_in_the_same_steps(method, steps):
    target = _blurry_target(64, 96)
    vg = _smooth_quadratic(target)
    x0 = np.full_like(target, 128.0)
    optimum = minimize(vg, x0, 300)[1]
    pixels = minimize(vg, x0, steps, method=method, learning_rate=8.0)[1] - optimum
    pyramid = minimize(vg, x0, steps, method=method, learning_rate=8.0, pyramid_levels=4)[1] - optimum
    assert pixels > 0 and pyramid < 0.3 * pixels


def test_pyramid_reports_images_and_a_stop_returns_the_best_image():
    target = _blurry_target(48, 48)
    vg = _smooth_quadratic(target)
    x0 = np.full_like(target, 128.0)
    seen = []
    best, loss = minimize(vg, x0, 5, pyramid_levels=3, on_step=lambda i, value, x: seen.append((i, value, x.shape)))
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5]
    assert all(shape == (48, 48, 3) for *_, shape in seen)
    assert best.shape == (48, 48, 3) and loss == pytest.approx(vg(best)[0], rel=1e-5)

    calls = {"n": 0}

    def stop_after_three():
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(StopRequested) as info:
        minimize(vg, x0, 50, pyramid_levels=3, should_stop=stop_after_three)
    assert info.value.best.shape == (48, 48, 3)
    assert vg(info.value.best)[0] < vg(x0)[0]


def test_adam_keeps_pixels_in_range_on_both_parametrisations():
    target = _blurry_target(32, 32) * 3.0 - 200.0  # far outside 0..255
    vg = _smooth_quadratic(target)
    for levels in (1, 3):
        start = np.full_like(target, 128.0)
        best, _ = minimize(vg, start, 20, method="adam", learning_rate=20.0, pyramid_levels=levels)
        assert best.min() >= -1e-3 and best.max() <= 255.0 + 1e-3


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="expected lbfgs or adam, received 'sgd'"):
        minimize(lambda x: (0.0, x), np.zeros((4, 4, 3), np.float32), 1, method="sgd")
