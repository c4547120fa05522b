"""A few gallery cells under several recipes, side by side: the evaluator's scores and the style score per layer.

For the trade-offs the whole gallery is too slow to sweep: this renders (or takes from
bench/gallery.py's cache) only the cells named, under each recipe of bench/recipes.py, and
prints evaluate.py's scores with the style score split by layer (block1_conv1 .. block5_conv1;
they sum to the style column), which tells whether a recipe misses the style's colours and
fine marks (the shallow layers) or its larger shapes (the deep ones).

    python bench/cells.py --recipes default,crowsonkb-sw30 --cells landscape:mosaic,chelsea:hatching [--size 384]
    # the same cells side by side (a row per cell: the photo, then each recipe), labelled with the scores:
    python bench/cells.py --recipes default,split-s91 --cells landscape:hatching --sheet bench/out/cells.jpg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evaluate  # noqa: E402
import gallery  # noqa: E402
import recipes  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default="default", help="comma-separated names from bench/recipes.py")
    parser.add_argument("--cells", required=True, help="comma-separated photo:style pairs of bench/gallery.py")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--sheet", help="also write the cells side by side to this picture (.jpg or .png)")
    args = parser.parse_args(argv)
    sources = gallery.SOURCES
    cells = [tuple(c.split(":")) for c in args.cells.split(",") if c]
    unknown = [c for c in cells if len(c) != 2 or c[0] not in sources or c[1] not in sources]
    if unknown:
        parser.error(f"--cells: expected photo:style pairs of {', '.join(sources)}, received {unknown[0]}")
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    bad = [n for n in names if n not in recipes.RECIPES]
    if bad:
        parser.error(f"--recipes: expected names among {', '.join(recipes.RECIPES)}, received {bad[0]!r}")
    layers = " ".join(f"{n.split('_')[0]:>7}" for n in evaluate.STYLE_LAYERS)
    evaluators = {  # one per cell: the photo's and the style's statistics computed once for every recipe
        (photo, style): evaluate.PairEvaluator(gallery.load_image(sources[photo]), gallery.load_image(sources[style]))
        for photo, style in cells
    }
    rows, images = [], {}
    for name in names:
        config = recipes.config_for(name, args.size)
        for photo, style in cells:
            image, record = gallery.render(name, config, photo, style, log=lambda m: print(m, flush=True))
            per_layer = evaluators[(photo, style)].style_by_layer(image)
            rows.append((name, f"{photo}+{style}", record["scores"], per_layer))
            images[(name, photo, style)] = (image, record)
    header = f"{'recipe':>16} {'cell':>18}" + "".join(f"{c:>8}" for c in evaluate.COLUMNS)
    print(header + "   style by layer: " + layers)
    for name, cell, s, per in rows:
        print(
            f"{name:>16} {cell:>18}"
            + "".join(f"{s[c]:8.3f}" for c in evaluate.COLUMNS)
            + "                   "
            + " ".join(f"{v:7.3f}" for v in per)
        )
    if args.sheet:
        side_by_side(images, names, cells, sources, args.size, args.sheet)
        print(f"sheet {args.sheet}")
    return 0


def side_by_side(images: dict, names: list, cells: list, sources: dict, size: int, path) -> None:
    """A row per cell: the photo, then the cell under each recipe, each labelled with its recipe and scores."""
    from PIL import Image

    label_h, pad = 50, 6
    cell_w, cell_h = size + pad, size + label_h + pad
    sheet = Image.new("RGB", ((len(names) + 1) * cell_w + pad, len(cells) * cell_h + pad), (255, 255, 255))
    font = gallery._font(13)

    def place(img, col: int, row: int, lines) -> None:
        gallery.place_labelled(sheet, img, pad + col * cell_w, pad + row * cell_h, size, size, lines, font)

    for row, (photo, style) in enumerate(cells):
        place(gallery.load_image(sources[photo]), 0, row, [f"photo: {photo}", f"style: {style}"])
        for col, name in enumerate(names, start=1):
            image, record = images[(name, photo, style)]
            sc = record["scores"]
            place(
                image,
                col,
                row,
                [
                    f"recipe {name}",
                    f"style {sc['style']:.3f}  W2 {sc['w2']:.3f}  content {sc['content']:.2f}",
                    f"edges {sc['edges']:.2f}  SSIM {sc['ssim']:.2f}  {record['seconds']:.0f} s",
                ],
            )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if str(path).lower().endswith((".jpg", ".jpeg")):
        sheet.save(path, quality=90)
    else:
        sheet.save(path)


if __name__ == "__main__":
    raise SystemExit(main())
