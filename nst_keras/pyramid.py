"""An image written as a Laplacian-style pyramid of corrections, for the optimiser to work on.

    image = base + level_0 + up(level_1) + up(level_2) + ... + up(level_{n-1})

level_k has 1/2^k of the image's height and width and `up` is bilinear upsampling to full size.
Optimising the levels instead of the pixels changes nothing about the objective, only the
geometry the optimiser sees: a step on a coarse level moves a whole neighbourhood at once, so
the large, smooth structures that per-pixel gradient steps build up slowly (strokes, colour
fields of the style) appear in a few steps. On the sample at 512 px, Adam on a 6-level pyramid
reaches in 100 steps the loss the tutorial's per-pixel Adam reaches in about 420 (README, "Speed";
bench/bench_optimizers.py compares them).

The optimiser sees one flat float32 vector holding all levels (about 4/3 of the pixel count).
`compose` maps it to the image, `pull_back` maps the image's gradient to the vector's gradient
(the adjoint of compose, so the pair is exact: <pull_back(g), v> == <g, compose(v) - base>).

The maps are linear and separable: upsampling a level is one sparse interpolation matrix per
axis (two taps a row, half-pixel centres: what keras.ops.image.resize's "bilinear" computes on
every backend), and the pull-back applies the transposed matrices. They run in numpy/scipy on
the host, where the optimiser's vector lives, so they are the same on every Keras backend.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import sparse

MIN_LEVEL_SIDE = 8  # coarser levels than this would hold a handful of numbers: no use


def level_shapes(height: int, width: int, levels: int) -> list:
    """[(h, w, 3)] of each level, finest first; levels whose short side would fall below MIN_LEVEL_SIDE are dropped."""
    shapes = []
    for k in range(max(1, int(levels))):
        h, w = -(-height // 2**k), -(-width // 2**k)
        if k > 0 and min(h, w) < MIN_LEVEL_SIDE:
            break
        shapes.append((h, w, 3))
    return shapes


@lru_cache(maxsize=64)
def interpolation_matrix(size_out: int, size_in: int) -> sparse.csr_matrix:
    """(size_out, size_in) bilinear resampling along one axis: half-pixel centres, edges clamped."""
    src = (np.arange(size_out, dtype=np.float64) + 0.5) * (size_in / size_out) - 0.5
    src = np.clip(src, 0.0, size_in - 1)
    low = np.floor(src).astype(np.int64)
    high = np.minimum(low + 1, size_in - 1)
    frac = src - low
    rows = np.repeat(np.arange(size_out), 2)
    cols = np.stack([low, high], axis=1).reshape(-1)
    vals = np.stack([1.0 - frac, frac], axis=1).reshape(-1).astype(np.float32)
    return sparse.csr_matrix((vals, (rows, cols)), shape=(size_out, size_in), dtype=np.float32)


@lru_cache(maxsize=64)
def _transposed(size_out: int, size_in: int) -> sparse.csr_matrix:
    return interpolation_matrix(size_out, size_in).T.tocsr()


def _along(matrix, array: np.ndarray, axis: int) -> np.ndarray:
    """`matrix` applied to `array` along `axis` (0 or 1)."""
    if axis == 0:
        out = matrix @ array.reshape(array.shape[0], -1)
        return np.asarray(out, np.float32).reshape((matrix.shape[0],) + array.shape[1:])
    moved = np.ascontiguousarray(np.swapaxes(array, 0, 1))
    out = np.asarray(matrix @ moved.reshape(moved.shape[0], -1), np.float32)
    return np.ascontiguousarray(np.swapaxes(out.reshape((matrix.shape[0],) + moved.shape[1:]), 0, 1))


def upsample(level: np.ndarray, height: int, width: int) -> np.ndarray:
    """An (h, w, C) level resized to (height, width, C), bilinear."""
    rows = _along(interpolation_matrix(height, level.shape[0]), np.ascontiguousarray(level, np.float32), 0)
    return _along(interpolation_matrix(width, level.shape[1]), rows, 1)


def upsample_adjoint(grad: np.ndarray, height: int, width: int) -> np.ndarray:
    """The adjoint of upsample: an (H, W, C) gradient pulled back to an (height, width, C) level."""
    rows = _along(_transposed(grad.shape[0], height), np.ascontiguousarray(grad, np.float32), 0)
    return _along(_transposed(grad.shape[1], width), rows, 1)


class Pyramid:
    """The map between an (H, W, 3) image and the flat vector of its pyramid levels around `base`."""

    def __init__(self, base: np.ndarray, levels: int):
        self.base = np.ascontiguousarray(base, dtype=np.float32)
        height, width = self.base.shape[:2]
        self.shapes = level_shapes(height, width, levels)
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.offsets = np.cumsum([0] + self.sizes)

    @property
    def size(self) -> int:
        """Length of the flat vector."""
        return int(self.offsets[-1])

    def zeros(self) -> np.ndarray:
        """The vector whose image is `base`."""
        return np.zeros(self.size, np.float32)

    def _split(self, flat: np.ndarray) -> list:
        bounds = zip(self.offsets[:-1], self.offsets[1:], self.shapes)
        return [flat[a:b].reshape(shape) for a, b, shape in bounds]

    def compose(self, flat: np.ndarray) -> np.ndarray:
        """The (H, W, 3) image of a vector."""
        levels = self._split(np.asarray(flat, np.float32))
        h, w = self.shapes[0][:2]
        image = self.base + levels[0]
        for level in levels[1:]:
            image += upsample(level, h, w)
        return image

    def pull_back(self, grad: np.ndarray) -> np.ndarray:
        """The gradient with respect to the vector, from the gradient with respect to the image."""
        grad = np.ascontiguousarray(grad, dtype=np.float32)
        parts = [grad.reshape(-1)]
        for h, w, _ in self.shapes[1:]:
            parts.append(upsample_adjoint(grad, h, w).reshape(-1))
        return np.concatenate(parts) if len(parts) > 1 else parts[0].copy()

    def absorb_clip(self, flat: np.ndarray, low: float = 0.0, high: float = 255.0) -> None:
        """Change the finest level (in place) so the vector's image lies in low..high everywhere."""
        image = self.compose(flat)
        fine = flat[: self.sizes[0]].reshape(self.shapes[0])
        fine += np.clip(image, low, high) - image
