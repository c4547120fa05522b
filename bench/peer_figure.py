"""The pictures of a bench_peer.py run side by side: per pair, the photo, the peer's result and each run of ours.

    .venv/bin/python bench/peer_figure.py [--run bench/out/peer] [-o docs/peer.png] [--size 300]
    # several runs (a pair each, say), one row per pair, leaving out some of ours:
    .venv/bin/python bench/peer_figure.py --run RUN1 --run RUN2 --drop "strength 89"

Reads what bench/bench_peer.py wrote (peer.json and the PNGs beside it) and labels every picture with
its wall time and its scores (bench/evaluate.py: style by Gram, W2, content, edges). Computes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run", action="append", help="bench_peer.py's --out folder (repeat for several; default bench/out/peer)"
    )
    parser.add_argument("--drop", action="append", default=[], help="leave out our runs whose label contains this")
    parser.add_argument("-o", "--output", default=str(HERE.parent / "docs" / "peer.png"))
    parser.add_argument("--size", type=int, default=300, help="long side of each picture (px)")
    args = parser.parse_args(argv)

    import evaluate
    import gallery

    summary = []
    for folder in args.run or [str(HERE / "out" / "peer")]:
        for entry in json.loads((Path(folder) / "peer.json").read_text()):
            ours = [o for o in entry["ours"] if not any(d in o["label"] for d in args.drop)]
            summary.append(entry | {"ours": ours, "folder": Path(folder)})
    cols = 2 + max(len(e["ours"]) for e in summary)
    label_h, pad, size = 65, 6, args.size
    # each row as tall as its pictures at `size` wide or tall (no blank bands above and below a wide photo)
    shapes = [evaluate.load(str(e["folder"] / f"{e['pair']}-peer.png")).shape[:2] for e in summary]
    heights = [round(size * min(1.0, h / w)) for h, w in shapes]
    cell_w = size + pad
    tops = [pad + sum(hh + label_h + pad for hh in heights[:i]) for i in range(len(summary))]
    sheet = Image.new("RGB", (cols * cell_w + pad, tops[-1] + heights[-1] + label_h + pad), (255, 255, 255))
    font = gallery._font(13)

    def place(img, col, row, lines):
        gallery.place_labelled(sheet, img, pad + col * cell_w, tops[row], size, heights[row], lines, font)

    def scores(s):
        return [f"style {s['style']:.3f}  W2 {s['w2']:.3f}  content {s['content']:.2f}", f"edges {s['edges']:.2f}"]

    for row, entry in enumerate(summary):
        name, run = entry["pair"], entry["folder"]
        photo = evaluate.load(str(run / f"{name}-photo.png"))
        place(photo, 0, row, [f"photo: {name.split('+')[0]}", f"style: {name.split('+')[1]}"])
        peer = evaluate.load(str(run / f"{name}-peer.png"))
        place(peer, 1, row, ["crowsonkb defaults", f"{entry['peer_wall_s']:.0f} s", *scores(entry["peer_score"])])
        for i, ours in enumerate(entry["ours"]):
            image = evaluate.load(str(run / f"{name}-{ours['slug']}.png"))
            ratio = entry["peer_wall_s"] / ours["wall_s"]
            place(
                image,
                2 + i,
                row,
                [ours["label"], f"{ours['wall_s']:.0f} s ({ratio:.0f}x less time)", *scores(ours["score"])],
            )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
        args.output, optimize=True
    )
    print(f"wrote {args.output} ({sheet.width}x{sheet.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
