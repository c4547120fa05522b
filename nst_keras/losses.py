"""The terms of the Gatys et al. objective, written with keras.ops.

Every term is normalized so that one set of weights gives the same look at any image size
and with either backbone: Gram matrices are averaged over positions, and each squared error
is divided by the squared magnitude of its own target. A term of 1.0 then means "as far from
the target as the target is from zero".
"""

from __future__ import annotations

from .backend.keras_api import ops

EPS = 1e-8


def gram(features):
    """Gram matrix (C, C) of features (1, H, W, C), averaged over the H*W positions."""
    shape = ops.shape(features)
    channels = shape[-1]
    flat = ops.reshape(features, (-1, channels))
    positions = ops.cast(ops.shape(flat)[0], flat.dtype)
    return ops.matmul(ops.transpose(flat), flat) / positions


def relative_squared_error(value, target):
    """sum((value - target)^2) / sum(target^2): scale-free distance to a target."""
    return ops.sum(ops.square(value - target)) / (ops.sum(ops.square(target)) + EPS)


def content_loss(features, target):
    return relative_squared_error(features, target)


def style_loss(features, target_gram):
    return relative_squared_error(gram(features), target_gram)


def total_variation(image):
    """Mean squared difference between neighbouring pixels of an (1, H, W, 3) image."""
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return ops.mean(ops.square(dy)) + ops.mean(ops.square(dx))


def total_loss(image, features, content_targets, style_targets, weights, tv_reference):
    """The weighted objective and its parts.

    features: {layer: features of `image`}; content_targets: {layer: target features};
    style_targets: {layer: target Gram}; weights: {"content": w, "style": {layer: w}, "tv": w}
    (content weight already divided by the number of content layers); tv_reference: the
    content image's own total variation, so tv = 1 means "as rough as the photo".
    """
    content = sum(content_loss(features[name], target) for name, target in content_targets.items())
    style = sum(w * style_loss(features[name], style_targets[name]) for name, w in weights["style"].items())
    tv = total_variation(image) / (tv_reference + EPS)
    loss = weights["content"] * content + weights["style_total"] * style + weights["tv"] * tv
    return loss, {"content": content, "style": style, "tv": tv}
