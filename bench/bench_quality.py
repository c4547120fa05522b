"""How far a result moved towards the style and how much of the photo it kept (HED VGG16 features).

The same two measures the slow quality test (tests/test_engine.py) asserts on:
- Gram distance to the style: the sum over the style layers of the relative Gram error
  sum((G(x) - G(style))^2) / sum(G(style)^2), the style resized to the output's long side
  (square sample style); printed for the content photo and for the output (lower = more
  style), and their ratio;
- content distance at block5_conv2: the relative feature error against the photo, for the
  output and for the style image resized to the output's size (lower = more of the photo
  kept), and their ratio.

Rows: the test's own setting (160 px, 40 iterations at every scale), the default pipeline at
512 px, and any result images given with --images (e.g. bench/out/baseline.png from the
yardstick, bench/out/pipeline-normal.png from bench_speed.py), measured against the photo at
their size.

    python bench/bench_quality.py [--size 512] [--images A.png B.png]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def measures(content, style, output, config) -> dict:
    """Gram distances (content, output) and content distances (output, style) at the output's size."""
    from nst_keras.features import FeatureExtractor
    from nst_keras.losses import content_loss, gram, style_loss
    from nst_keras.resize import fit_long_side, resize

    h, w = output.shape[:2]
    layers = tuple(dict.fromkeys(config.content_layers + config.style_layers))
    ex = FeatureExtractor(config.backbone, layers, weights_path=config.weights)
    photo = ex(resize(content, h, w)[None])
    out = ex(output[None, ..., :3])
    style_feats = ex(resize(style, *fit_long_side(*style.shape[:2], max(h, w)))[None])

    def gram_distance(f):
        return sum(float(style_loss(f[layer], gram(style_feats[layer]))) for layer in config.style_layers)

    layer = config.content_layers[0]
    style_as_content = float(content_loss(ex(resize(style, h, w)[None])[layer], photo[layer]))
    return {
        "gram_content": gram_distance(photo),
        "gram_output": gram_distance(out),
        "content_output": float(content_loss(out[layer], photo[layer])),
        "content_style": style_as_content,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--images", nargs="*", default=[])
    parser.add_argument("--no-runs", action="store_true", help="only measure --images")
    args = parser.parse_args(argv)

    import nst_keras

    content = common.load_rgb(common.CONTENT)
    style = common.style_image()
    print(common.machine_line(), flush=True)
    rows = []

    def add(label, output, config, seconds):
        m = measures(content, style, output, config)
        rows.append(
            [
                label,
                f"{output.shape[1]}x{output.shape[0]}",
                m["gram_content"],
                m["gram_output"],
                m["gram_content"] / m["gram_output"],
                m["content_output"],
                m["content_style"],
                m["content_output"] / m["content_style"],
                seconds,
            ]
        )

    if not args.no_runs:
        runs = [
            (
                "test setting: 160 px, 80->160, 40 its",
                common.bench_config(max_size=160, min_size=80, iterations=40),
                None,
            ),
            (f"default pipeline at {args.size} px", common.bench_config(), args.size),
        ]
        for label, config, size in runs:
            photo = common.content_at(size) if size else content
            t = time.perf_counter()
            out = nst_keras.stylize(photo, [style], config)
            seconds = time.perf_counter() - t
            common.save_png(out, common.OUT / f"quality-{out.shape[1]}.png")
            add(label, out, config, seconds)
    for path in args.images:
        out = common.load_rgb(path)
        add(str(path), out, common.bench_config(), None)

    print()
    print("Gram distance to the style (sum over style layers of the relative Gram error; lower = more style)")
    print("content distance at block5_conv2 (relative feature error against the photo; lower = more photo kept)")
    headers = [
        "result",
        "size",
        "gram: photo",
        "gram: output",
        "photo/output",
        "content: output",
        "content: style img",
        "output/style",
        "seconds",
    ]
    print(common.table(headers, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
