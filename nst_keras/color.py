"""Colour preservation for style transfer (Gatys, Bethge, Hertzmann & Shechtman, 2016:
"Preserving Color in Neural Artistic Style Transfer").

Two ways to keep the content's colours while taking the style's texture:

- luminance-only transfer: stylize the luminance channels only (`to_luminance_rgb` of the
  content, `match_luminance` of the style), then put the content's chroma back onto the
  result (`combine_luminance`);
- colour histogram matching: before stylizing, give the style image the content's colour
  mean and covariance (`match_color_histogram(style, content)`).

Images are float arrays (H, W, 3) with values 0..255; a fourth (alpha) channel of an input
that is transformed is passed through unchanged. Luminance and chroma are the Y and I, Q
channels of YIQ (Y: the ITU-R BT.601 luma weights).
"""

from __future__ import annotations

import numpy as np

from .resize import resize

# RGB -> YIQ (NTSC); the rows are Y, I, Q. Y uses the BT.601 weights.
_RGB_TO_YIQ = np.array(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=np.float64,
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def _split(image, name: str):
    """(rgb float64 (H, W, 3), alpha (H, W, 1) or None) of an (H, W, 3|4) array."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(f"{name}: expected an image array (H, W, 3) or (H, W, 4), received shape {array.shape}")
    array = array.astype(np.float64)
    return array[..., :3], (array[..., 3:] if array.shape[-1] == 4 else None)


def _join(rgb: np.ndarray, alpha, dtype=np.float32) -> np.ndarray:
    if alpha is not None:
        rgb = np.concatenate([rgb, alpha], axis=-1)
    return rgb.astype(dtype)


def rgb_to_yiq(rgb) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W, 3) YIQ (float64)."""
    rgb, _ = _split(rgb, "rgb")
    return rgb @ _RGB_TO_YIQ.T


def yiq_to_rgb(yiq) -> np.ndarray:
    """(H, W, 3) YIQ -> (H, W, 3) RGB (float64, not clipped)."""
    return np.asarray(yiq, dtype=np.float64) @ _YIQ_TO_RGB.T


def luminance(rgb) -> np.ndarray:
    """Luminance Y (H, W) of an RGB image: 0.299 R + 0.587 G + 0.114 B, float32, 0..255."""
    rgb, _ = _split(rgb, "rgb")
    return (rgb @ _RGB_TO_YIQ[0]).astype(np.float32)


def to_luminance_rgb(rgb) -> np.ndarray:
    """The image's luminance as a grey RGB image (Y in all three channels), float32 (H, W, 3)."""
    y = luminance(rgb)
    return np.repeat(y[..., None], 3, axis=-1)


def match_luminance(style_rgb, content_rgb) -> np.ndarray:
    """The style's luminance, shifted and scaled to the content's luminance mean and standard
    deviation, as a grey RGB image (float32 (H, W, 3) at the style's size, clipped to 0..255).

    This is the paper's luminance matching: the style's texture is kept, its brightness and
    contrast are made those of the content, so that the luminance-only transfer stays balanced.
    A flat style (no contrast) is only shifted.
    """
    y_style = luminance(style_rgb).astype(np.float64)
    y_content = luminance(content_rgb).astype(np.float64)
    std_style, std_content = y_style.std(), y_content.std()
    scale = std_content / std_style if std_style > 1e-6 else 0.0
    matched = (y_style - y_style.mean()) * scale + y_content.mean()
    matched = np.clip(matched, 0.0, 255.0).astype(np.float32)
    return np.repeat(matched[..., None], 3, axis=-1)


def _resize_plane(plane: np.ndarray, size: tuple) -> np.ndarray:
    """Bicubic resize of a float (H, W) plane to size (h, w)."""
    height, width = size
    if plane.shape == (height, width):
        return plane
    return resize(plane, height, width, filter="bicubic").astype(np.float64)


def combine_luminance(output_rgb, content_rgb) -> np.ndarray:
    """The output's luminance (Y) with the content's chroma (I, Q): the stylized texture in the
    content's colours. The content's chroma is resized to the output's size when they differ.

    Returns float32 (H, W, 3) (or (H, W, 4) with the output's alpha passed through), clipped to
    0..255.
    """
    output, alpha = _split(output_rgb, "output_rgb")
    content, _ = _split(content_rgb, "content_rgb")
    y = output @ _RGB_TO_YIQ[0]
    content_yiq = content @ _RGB_TO_YIQ.T
    size = output.shape[:2]
    i = _resize_plane(content_yiq[..., 1], size)
    q = _resize_plane(content_yiq[..., 2], size)
    rgb = np.stack([y, i, q], axis=-1) @ _YIQ_TO_RGB.T
    return _join(np.clip(rgb, 0.0, 255.0), alpha)


def _sym_sqrt(matrix: np.ndarray, inverse: bool = False, floor: float = 1e-4) -> np.ndarray:
    """Square root (or inverse square root) of a symmetric positive semi-definite 3x3 matrix via eigh.
    Eigenvalues are floored at `floor` so that flat or grey images do not blow up."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    values = np.maximum(values, floor)
    roots = 1.0 / np.sqrt(values) if inverse else np.sqrt(values)
    return (vectors * roots) @ vectors.T


def match_color_histogram(source_rgb, target_rgb) -> np.ndarray:
    """Give `source` the colour mean and covariance of `target` with one linear map of its pixels.

    x' = A (x - mean_s) + mean_t, with A = C_t^(1/2) C_s^(-1/2) from symmetric matrix square
    roots (the "Image Analogies" colour transfer of Gatys et al. 2016): the result's colour
    mean and covariance equal the target's (up to clipping to 0..255). For colour
    preservation call it with the style as source and the content as target.

    Returns float32 at the source's size, (H, W, 3), or (H, W, 4) with the source's alpha
    passed through.
    """
    source, alpha = _split(source_rgb, "source_rgb")
    target, _ = _split(target_rgb, "target_rgb")
    pixels_s = source.reshape(-1, 3)
    pixels_t = target.reshape(-1, 3)
    mean_s, mean_t = pixels_s.mean(axis=0), pixels_t.mean(axis=0)
    cov_s = np.cov(pixels_s, rowvar=False, bias=True)
    cov_t = np.cov(pixels_t, rowvar=False, bias=True)
    transform = _sym_sqrt(cov_t) @ _sym_sqrt(cov_s, inverse=True)
    result = (pixels_s - mean_s) @ transform.T + mean_t
    result = np.clip(result, 0.0, 255.0).reshape(source.shape)
    return _join(result, alpha)
