"""The objective's value and its gradient with respect to the image.

This is the one backend-specific piece (TensorFlow's GradientTape inside a tf.function);
everything else uses keras.ops. The compiled function takes the image and all targets as
arguments with unknown height and width, so a new image size or a new tile does not
retrace it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import losses
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
        c_spec = {name: tf.TensorSpec([1, None, None, None], tf.float32) for name in self.content_layers}
        s_spec = {name: tf.TensorSpec([None, None], tf.float32) for name in self.style_layers}
        self._value_and_grad = tf.function(
            self._value_and_grad_eager,
            input_signature=[
                tf.TensorSpec([1, None, None, 3], tf.float32),
                c_spec,
                s_spec,
                tf.TensorSpec([], tf.float32),
            ],
        )
        self._features = tf.function(
            lambda image: self.extractor(image), input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)]
        )

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
        return self._features(tf.convert_to_tensor(image[None], tf.float32))

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
        return {name: tf.add_n([w * g[name] for g, w in zip(grams, blend)]) for name in grams[0]}

    @staticmethod
    def tv_reference(content: np.ndarray) -> tf.Tensor:
        value = losses.total_variation(tf.convert_to_tensor(content[None], tf.float32))
        return tf.maximum(value, 1.0)  # a flat image still gets a sensible scale

    # Value and gradient ------------------------------------------------------------------

    def _value_and_grad_eager(self, image, content_targets, style_targets, tv_reference):
        with tf.GradientTape() as tape:
            tape.watch(image)
            feats = self.extractor(image)
            loss, parts = losses.total_loss(image, feats, content_targets, style_targets, self.weights, tv_reference)
        grad = tape.gradient(loss, image)
        return loss, grad, parts

    def value_and_grad(self, image, content_targets, style_targets, tv_reference):
        """(loss, gradient, parts) for an image tensor or array of shape (1, H, W, 3)."""
        return self._value_and_grad(
            tf.convert_to_tensor(image, tf.float32), content_targets, style_targets, tv_reference
        )
