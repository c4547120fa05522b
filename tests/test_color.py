"""Colour preservation: luminance-only transfer and colour histogram matching."""

from __future__ import annotations

import numpy as np
import pytest

from nst_keras.color import (
    combine_luminance,
    luminance,
    match_color_histogram,
    match_luminance,
    rgb_to_yiq,
    to_luminance_rgb,
    yiq_to_rgb,
)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def smooth_image(rng, height, width, low=40.0, high=215.0):
    """A colourful image with smooth colour fields (chroma that survives resizing)."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    phase = rng.uniform(0, 2 * np.pi, 3)
    channels = [np.sin(2 * np.pi * (x * (1 + c) + y * (2 - c)) + phase[c]) for c in range(3)]
    image = np.stack(channels, axis=-1) * 0.5 + 0.5
    return (low + (high - low) * image).astype(np.float32)


def test_luminance_bt601_weights():
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [10, 20, 30]]], dtype=np.float32)
    y = luminance(pixels)
    assert y.shape == (1, 5) and y.dtype == np.float32
    assert np.allclose(y[0], [0.299 * 255, 0.587 * 255, 0.114 * 255, 255.0, 0.299 * 10 + 0.587 * 20 + 0.114 * 30])


def test_to_luminance_rgb_is_grey(rng):
    image = rng.uniform(0, 255, (6, 5, 3))
    grey = to_luminance_rgb(image)
    assert grey.shape == (6, 5, 3)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    assert np.allclose(grey[..., 0], luminance(image))
    # Grey in, the same grey out.
    assert np.allclose(to_luminance_rgb(grey), grey, atol=1e-3)


def test_yiq_round_trip(rng):
    image = rng.uniform(0, 255, (4, 7, 3))
    assert np.allclose(yiq_to_rgb(rgb_to_yiq(image)), image, atol=1e-9)
    # Grey pixels have no chroma.
    assert np.allclose(rgb_to_yiq(np.full((2, 2, 3), 128.0))[..., 1:], 0, atol=1e-4)


def test_match_luminance_mean_and_std(rng):
    style = smooth_image(rng, 40, 50, low=150, high=250)  # bright, low contrast
    content = smooth_image(rng, 30, 20, low=20, high=200)
    matched = match_luminance(style, content)
    assert matched.shape == (40, 50, 3)
    assert np.array_equal(matched[..., 0], matched[..., 2])
    y_content = luminance(content)
    assert abs(matched[..., 0].mean() - y_content.mean()) < 0.5
    assert abs(matched[..., 0].std() - y_content.std()) < 0.5
    # The style's structure is kept: matched luminance is an increasing affine map of the style's.
    assert np.corrcoef(matched[..., 0].ravel(), luminance(style).ravel())[0, 1] > 0.999


def test_match_luminance_flat_style():
    style = np.full((8, 8, 3), 200.0)
    content = np.linspace(0, 255, 8 * 8 * 3).reshape(8, 8, 3)
    matched = match_luminance(style, content)
    assert np.all(np.isfinite(matched))
    assert np.allclose(matched, luminance(content).mean(), atol=1e-3)


def test_combine_luminance_same_size(rng):
    content = smooth_image(rng, 24, 32, low=90, high=165)
    output = rng.uniform(90, 165, (24, 32, 3)).astype(np.float32)  # a "stylized" texture in other colours
    combined = combine_luminance(output, content)
    assert combined.shape == output.shape and combined.dtype == np.float32
    assert combined.min() > 0 and combined.max() < 255  # no clipping: the decomposition is exact
    yiq_combined, yiq_content = rgb_to_yiq(combined), rgb_to_yiq(content)
    # Luminance from the output, chroma from the content (no clipping happened on these ranges).
    assert np.allclose(yiq_combined[..., 0], luminance(output), atol=1e-3)
    assert np.allclose(yiq_combined[..., 1:], yiq_content[..., 1:], atol=1e-3)


def test_combine_luminance_resizes_content_chroma(rng):
    content = smooth_image(rng, 30, 40, low=90, high=165)
    output = rng.uniform(90, 165, (60, 80, 3)).astype(np.float32)
    combined = combine_luminance(output, content)
    assert combined.shape == (60, 80, 3)
    assert combined.min() > 0 and combined.max() < 255
    yiq_combined = rgb_to_yiq(combined)
    assert np.allclose(yiq_combined[..., 0], luminance(output), atol=1e-3)
    # Chroma is the content's, upsampled: compare block means with the content's chroma.
    chroma_down = yiq_combined[..., 1:].reshape(30, 2, 40, 2, 2).mean(axis=(1, 3))
    assert np.abs(chroma_down - rgb_to_yiq(content)[..., 1:]).mean() < 0.5


def test_combine_luminance_clips_and_keeps_alpha(rng):
    content = np.zeros((8, 8, 3), np.float32)
    content[..., 0] = 255  # saturated red chroma
    output = np.concatenate([np.full((8, 8, 3), 250.0), np.full((8, 8, 1), 77.0)], axis=-1)
    combined = combine_luminance(output, content)
    assert combined.shape == (8, 8, 4)
    assert combined[..., :3].min() >= 0 and combined[..., :3].max() <= 255
    assert np.all(combined[..., 3] == 77.0)
    assert np.all(combined[..., 0] >= combined[..., 1])  # still reddish


def test_match_color_histogram_mean_and_covariance(rng):
    # Source: correlated colours around mid grey; target: different mean and covariance. Both
    # chosen so the result stays inside 0..255 (no clipping), so the match is exact.
    n = 64 * 48
    source = (
        np.array([120.0, 110.0, 100.0]) + rng.normal(size=(n, 3)) @ np.array([[12, 3, 0], [0, 10, 4], [2, 0, 8]])
    ).reshape(64, 48, 3)
    target = (
        np.array([90.0, 140.0, 170.0]) + rng.normal(size=(40 * 30, 3)) @ np.array([[15, -4, 2], [0, 6, 1], [0, 3, 11]])
    ).reshape(40, 30, 3)
    result = match_color_histogram(source, target)
    assert result.shape == source.shape and result.dtype == np.float32
    assert result.min() > 0 and result.max() < 255
    flat_r, flat_t = result.reshape(-1, 3).astype(np.float64), target.reshape(-1, 3)
    assert np.allclose(flat_r.mean(axis=0), flat_t.mean(axis=0), atol=1e-2)
    cov_r, cov_t = np.cov(flat_r, rowvar=False, bias=True), np.cov(flat_t, rowvar=False, bias=True)
    assert np.allclose(cov_r, cov_t, atol=0.05)
    # The map is the symmetric "Image Analogies" one, so pixels keep their order along each colour axis.
    assert np.corrcoef(flat_r[:, 1], source.reshape(-1, 3)[:, 1])[0, 1] > 0.8


def test_match_color_histogram_identity_and_alpha(rng):
    image = smooth_image(rng, 20, 20)
    assert np.allclose(match_color_histogram(image, image), image, atol=1e-3)
    with_alpha = np.concatenate([image, np.full((20, 20, 1), 33.0, np.float32)], axis=-1)
    result = match_color_histogram(with_alpha, image[::-1])
    assert result.shape == (20, 20, 4) and np.all(result[..., 3] == 33.0)


def test_match_color_histogram_degenerate_images(rng):
    flat = np.full((10, 10, 3), 100.0)
    target = smooth_image(rng, 10, 10)
    result = match_color_histogram(flat, target)
    assert np.all(np.isfinite(result))
    assert np.allclose(result, target.reshape(-1, 3).mean(axis=0), atol=1e-3)  # flat stays flat, at the mean
    grey = np.repeat(rng.uniform(0, 255, (10, 10, 1)), 3, axis=-1)
    result = match_color_histogram(grey, target)
    assert np.all(np.isfinite(result)) and result.min() >= 0 and result.max() <= 255


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"expected an image array \(H, W, 3\)"):
        luminance(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="source_rgb"):
        match_color_histogram(np.zeros((4, 4, 2)), np.zeros((4, 4, 3)))
