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
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

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


@tf.function(reduce_retracing=True)
def _upsample_sum(levels, height, width):
    total = levels[0]
    for level in levels[1:]:
        total = total + tf.image.resize(level[None], (height, width), "bilinear")[0]
    return total


@tf.function(reduce_retracing=True)
def _upsample_adjoint(levels, grad):
    with tf.GradientTape() as tape:
        tape.watch(levels)
        total = _upsample_sum(levels, tf.shape(grad)[0], tf.shape(grad)[1])
    return tape.gradient(total, levels, output_gradients=grad)


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
        return [tf.constant(flat[a:b].reshape(shape)) for a, b, shape in bounds]

    def compose(self, flat: np.ndarray) -> np.ndarray:
        """The (H, W, 3) image of a vector."""
        if len(self.shapes) == 1:
            return self.base + flat.reshape(self.shapes[0])
        h, w = self.shapes[0][:2]
        return self.base + _upsample_sum(self._split(flat), h, w).numpy()

    def pull_back(self, grad: np.ndarray) -> np.ndarray:
        """The gradient with respect to the vector, from the gradient with respect to the image."""
        grad = np.ascontiguousarray(grad, dtype=np.float32)
        if len(self.shapes) == 1:
            return grad.reshape(-1)
        grads = _upsample_adjoint(self._split(self.zeros()), tf.constant(grad))
        return np.concatenate([np.asarray(g).reshape(-1) for g in grads])

    def absorb_clip(self, flat: np.ndarray, low: float = 0.0, high: float = 255.0) -> None:
        """Change the finest level (in place) so the vector's image lies in low..high everywhere."""
        image = self.compose(flat)
        fine = flat[: self.sizes[0]].reshape(self.shapes[0])
        fine += np.clip(image, low, high) - image
