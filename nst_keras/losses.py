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


# The mean-and-covariance style term (style_loss="mean_cov"): its targets are one (C + 1, C)
# matrix per layer, the features' mean in row 0 and their Gram matrix below. Both are plain
# averages over positions, so several styles blend, and a large style image accumulates over
# windows, exactly as Gram matrices do; the covariance is derived from them here.


def moments(features):
    """(C + 1, C): the mean of features (1, H, W, C) over positions in row 0, their Gram matrix below."""
    channels = ops.shape(features)[-1]
    flat = ops.reshape(features, (-1, channels))
    return ops.concatenate([ops.mean(flat, axis=0, keepdims=True), gram(features)], axis=0)


def mean_cov_loss(features, target_moments):
    """Relative error of the features' mean plus that of their covariance, against a moments() target."""
    own = moments(features)
    mean, target_mean = own[:1], target_moments[:1]
    cov = own[1:] - ops.matmul(ops.transpose(mean), mean)
    target_cov = target_moments[1:] - ops.matmul(ops.transpose(target_mean), target_mean)
    return relative_squared_error(mean, target_mean) + relative_squared_error(cov, target_cov)


STYLE_TERMS = {"gram": (gram, style_loss), "mean_cov": (moments, mean_cov_loss)}


def total_variation(image):
    """Mean squared difference between neighbouring pixels of an (1, H, W, 3) image."""
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return ops.mean(ops.square(dy)) + ops.mean(ops.square(dx))


def total_loss(image, features, content_targets, style_targets, weights, tv_reference):
    """The weighted objective and its parts.

    features: {layer: features of `image`}; content_targets: {layer: target features};
    style_targets: {layer: target Gram}; weights: {"content": w, "style": {layer: w}, "tv": w}
    (content weight already divided by the number of content layers; optional "style_loss": a key
    of STYLE_TERMS, whose statistic the style targets are); tv_reference: the
    content image's own total variation, so tv = 1 means "as rough as the photo".
    """
    content = sum(content_loss(features[name], target) for name, target in content_targets.items())
    term = STYLE_TERMS[weights.get("style_loss", "gram")][1]
    style = sum(w * term(features[name], style_targets[name]) for name, w in weights["style"].items())
    tv = total_variation(image) / (tv_reference + EPS)
    loss = weights["content"] * content + weights["style_total"] * style + weights["tv"] * tv
    return loss, {"content": content, "style": style, "tv": tv}
