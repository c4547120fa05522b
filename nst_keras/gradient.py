"""The objective's value and its gradient with respect to the image.

The loss is written with keras.ops (losses.py); what differs per Keras backend (TensorFlow's
GradientTape in a tf.function, torch.autograd, jax.jit(jax.value_and_grad)) lives behind the
seam in nst_keras/backend/. The compiled function takes the image and all targets as
arguments, so a new image size or a new tile needs no new objective.
"""

from __future__ import annotations

import numpy as np

from . import backend, losses
from .backend.keras_api import ops
from .features import FeatureExtractor


class Objective:
    """Loss and gradient of one configured objective (weights and layers fixed; targets passed in)."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        content_layers,
        style_layer_weights: dict,
        content_weight: float,
        style_weight: float,
        tv_weight: float,
        style_loss: str = "gram",
    ):
        self.extractor = extractor
        self.style_loss = style_loss
        self.content_layers = tuple(content_layers)
        self.style_layers = tuple(style_layer_weights)
        self.weights = {
            "content": float(content_weight) / len(self.content_layers),
            "style": dict(style_layer_weights),
            "style_total": float(style_weight),
            "tv": float(tv_weight),
            "style_loss": style_loss,
        }
        self._seam = backend.seam()
        model = extractor.model
        self._value_and_grad = self._seam.compile_value_and_grad(
            self._loss, model, self.content_layers, self.style_layers
        )
        self._value_and_grad_eager = self._seam.uncompiled_value_and_grad(self._loss, model)
        self._features = self._seam.compile_features(self.extractor, model)

    # Targets -------------------------------------------------------------------------

    @classmethod
    def from_config(cls, extractor: FeatureExtractor, config) -> Objective:
        """The objective a StyleConfig describes (its layers and weights) on `extractor`'s features."""
        return cls(
            extractor,
            config.content_layers,
            config.style_layer_weight_map(),
            config.content_weight,
            config.effective_style_weight(),
            config.tv_weight,
            config.style_loss,
        )

    def features(self, image: np.ndarray) -> dict:
        """Features of an (H, W, 3) image, as tensors keyed by layer name."""
        return self._features(np.asarray(image, np.float32)[None])

    def content_targets(self, content: np.ndarray) -> dict:
        feats = self.features(content)
        return {name: feats[name] for name in self.content_layers}

    def style_grams(self, style: np.ndarray) -> dict:
        """The style targets: Gram matrices, or for style_loss 'mean_cov' losses.moments() (mean row + Gram)."""
        feats = self.features(style)
        statistic = losses.STYLE_TERMS[self.style_loss][0]
        return {name: statistic(feats[name]) for name in self.style_layers}

    @staticmethod
    def blend_grams(grams: list, blend: list) -> dict:
        """Weighted sum of several styles' Gram matrices (the blend weights sum to 1)."""
        out = {}
        for name in grams[0]:
            total = None
            for g, w in zip(grams, blend):
                term = g[name] * float(w)
                total = term if total is None else total + term
            out[name] = total
        return out

    @staticmethod
    def tensor(array) -> object:
        """A float32 array as a tensor of the backend in use (for targets computed outside the network)."""
        return ops.convert_to_tensor(np.asarray(array, np.float32))

    @staticmethod
    def tv_reference(content: np.ndarray):
        value = losses.total_variation(ops.convert_to_tensor(np.asarray(content, np.float32)[None]))
        return ops.maximum(value, 1.0)  # a flat image still gets a sensible scale

    # Value and gradient ------------------------------------------------------------------

    def _loss(self, image, content_targets, style_targets, tv_reference):
        feats = self.extractor(image)
        return losses.total_loss(image, feats, content_targets, style_targets, self.weights, tv_reference)

    def value_and_grad(self, image, content_targets, style_targets, tv_reference):
        """(loss, gradient, parts) as backend tensors for an image array or tensor of shape (1, H, W, 3).

        The framework's out-of-memory error becomes backend.OutOfMemory (a MemoryError) with a clear message.
        """
        try:
            return self._value_and_grad(image, content_targets, style_targets, tv_reference)
        except Exception as error:
            oom = backend.out_of_memory(error, f"a gradient evaluation at {_wxh(image)} px")
            if oom is None:
                raise
            raise oom from error

    def numpy_value_and_grad(self, image: np.ndarray, content_targets, style_targets, tv_reference) -> tuple:
        """(loss as a float, gradient as a float32 (H, W, 3) array) for an (H, W, 3) image array."""
        batch = np.asarray(image, np.float32)[None]
        loss, grad, _ = self.value_and_grad(batch, content_targets, style_targets, tv_reference)
        return float(self._seam.to_numpy(loss)), np.asarray(self._seam.to_numpy(grad), np.float32)[0]

    def to_numpy(self, tensor) -> np.ndarray:
        return self._seam.to_numpy(tensor)


def _wxh(image) -> str:
    shape = tuple(image.shape)
    return f"{shape[-2]}x{shape[-3]}"
