"""The optimisers, on the pixels and on a pyramid, on problems with known answers (pyramid.py: test_pyramid.py)."""

import numpy as np
import pytest

from nst_keras.optimize import StopRequested, minimize


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
