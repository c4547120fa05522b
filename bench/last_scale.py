"""What the full-size scale of a large photo adds: variants of the last scale on a crop, at 100%.

A 4000x3000 run spends most of its time in its last, tiled scale. This script runs every scale
but the last once (the default preset, `--memory-limit 8`, cached in bench/out/), then runs
variants of the last scale on one crop of the full-size image (plus a margin, so the crop's own
borders do not show) with the whole image's style targets, as a tile of the real run would:

- `0`: no full-size work, the half-size result upscaled (what the last scale starts from);
- `PxN`: P visits of N L-BFGS steps each, restarting between visits as the tiled scale does
  (2x25: 50 iterations in two passes, the default before 2026-12-02; 2x9: 17 iterations, the
  default since).

--result FILE.npy adds the same crop of a whole run's output (bench_scaling.py saves one in
bench/out/scale-SIZE[-TAG].npy), scored the same way: the real tiled scale beside the variants.

--scale-iterations N,N,... replaces the schedule's iterations per scale (the earlier scales'
counts shape the start; 150,114,87,66,50 was the default for 4000x3000 before 2026-12-02).

Printed per variant: seconds, seconds per megapixel-step, the independent evaluator's scores of
the crop (bench/evaluate.py; style against the same crop of the style image at the engine's
full-size scale) and the mean absolute difference to the reference variant (the first one
listed after 0). A side-by-side PNG of the crops is written to bench/out/last-scale-crops.png.

    python bench/last_scale.py [--size 4000x3000] [--variants 0,2x25,2x12,2x6] [--crop 768]
        [--at 0.45,0.40] [--style-size 0] [--scale-iterations 150,114,87,66,50] [--result FILE.npy]
        [--figure docs/large-photo-crop.png]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402

MARGIN = 128


def parse_variant(text: str) -> tuple:
    if text == "0":
        return 0, 0
    passes, steps = (int(v) for v in text.split("x"))
    return passes, steps


def style_for(style_size: int) -> np.ndarray:
    """The sample style, or the same drawing made at `style_size` px (real detail at full size)."""
    if not style_size:
        return common.style_image()
    path = common.OUT / f"style-swirls-{style_size}.png"
    if not path.exists():
        sys.path.insert(0, str(common.ROOT / "samples"))
        from make_style import make_style

        path.parent.mkdir(parents=True, exist_ok=True)
        make_style(style_size).save(path)
    return common.load_rgb(path)


def side_by_side(images: list, gap: int = 8) -> np.ndarray:
    """Equal-height images left to right with white gaps between them."""
    padded = [np.pad(x, ((0, 0), (0, gap), (0, 0)), constant_values=255) for x in images]
    return np.concatenate(padded, axis=1)[:, :-gap]


def schedule_for(config, shape, counts):
    """The engine's schedule [(h, w, iterations)] for content of `shape`, with `counts` when given."""
    from nst_keras.schedule import plan_scales

    schedule = plan_scales(config, *shape[:2])
    if counts:
        if len(counts) != len(schedule):
            raise SystemExit(f"--scale-iterations: expected {len(schedule)} counts, received {len(counts)}")
        schedule = [(h, w, n) for (h, w, _), n in zip(schedule, counts)]
    return schedule


def prefix_run(content, style, config, schedule, key: str) -> np.ndarray:
    """Every scale of `schedule` but the last; the result at the second-to-last size."""
    cache = common.OUT / f"last-scale-start-{key}.npy"
    if cache.exists():
        return np.load(cache)
    import nst_keras
    from nst_keras import engine

    original = engine.plan_scales
    engine.plan_scales = lambda cfg, h, w: schedule[:-1]
    try:
        t = time.perf_counter()
        out = nst_keras.stylize(content, style, config)
        print(f"prefix (scales but the last) {out.shape[1]}x{out.shape[0]}: {time.perf_counter() - t:.0f} s")
    finally:
        engine.plan_scales = original
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument("--variants", default="0,2x25,2x12,2x6")
    parser.add_argument("--crop", type=int, default=768)
    parser.add_argument("--at", default="0.45,0.40", help="crop centre as fractions (x, y) of the image")
    parser.add_argument("--style-size", type=int, default=0, help="draw the swirls style at this size (0: sample)")
    parser.add_argument("--changes", default="{}", help="StyleConfig changes as JSON")
    parser.add_argument("--scale-iterations", default="", help="iterations per scale, comma-separated")
    parser.add_argument("--result", help="a whole run's output (.npy) to crop and score beside the variants")
    parser.add_argument("--figure", help="the crops' centres at 100%% (448 px at most) side by side, written here")
    args = parser.parse_args()

    import evaluate

    from nst_keras import device
    from nst_keras.engine import RunContext, _style_grams, _tv_reference
    from nst_keras.features import cached_extractor
    from nst_keras.gradient import Objective
    from nst_keras.resize import resize
    from nst_keras.schedule import style_size

    w, h = (int(v) for v in args.size.split("x"))
    content = common.content_at(max(w, h), w / h)
    style = style_for(args.style_size)
    changes = {"max_size": 0, "memory_limit": 8.0, **json.loads(args.changes)}
    config = common.bench_config(**changes)
    counts = [int(v) for v in args.scale_iterations.split(",") if v]
    schedule = schedule_for(config, content.shape, counts)
    key = hashlib.sha1(repr((args.size, args.style_size, sorted(changes.items()), schedule)).encode()).hexdigest()
    start = prefix_run(content, style, config, schedule, key[:10])
    th, tw, _ = schedule[-1]

    fx, fy = (float(v) for v in args.at.split(","))
    c = args.crop
    cx0 = min(max(MARGIN, round(fx * tw - c / 2)), tw - c - MARGIN)
    cy0 = min(max(MARGIN, round(fy * th - c / 2)), th - c - MARGIN)
    y0, y1, x0, x1 = cy0 - MARGIN, cy0 + c + MARGIN, cx0 - MARGIN, cx0 + c + MARGIN
    inner = (slice(MARGIN, MARGIN + c), slice(MARGIN, MARGIN + c))

    dtype = device.compute_dtype(config.precision)
    layers = tuple(dict.fromkeys(config.content_layers + config.style_layers))
    extractor = cached_extractor(config.backbone, layers, config.pooling, config.weights, dtype)
    objective = Objective.from_config(extractor, config)
    style_full = resize(style, *style_size(style.shape[:2], (th, tw), config.style_scale))
    style_targets = objective.blend_grams([_style_grams(objective, style_full, 4_000_000)], [1.0])
    tv_ref = _tv_reference(content)
    content_crop = content[y0:y1, x0:x1]
    targets = (objective.content_targets(content_crop), style_targets, tv_ref)
    run = RunContext(objective, config, None, len(schedule), None, (th, tw))
    x_start = np.clip(resize(start, th, tw), 0.0, 255.0)[y0:y1, x0:x1]

    sh, sw = style_full.shape[:2]
    sy, sx = (sh - c) // 2, (sw - c) // 2
    judge = evaluate.PairEvaluator(content_crop[inner], style_full[sy : sy + c, sx : sx + c])
    counts_text = ",".join(str(n) for _, _, n in schedule)
    print(f"{args.size}, steps per scale {counts_text}, {dtype}, crop {c}x{c} at ({cx0}, {cy0}) + {MARGIN} px")
    print(f"{'variant':>8} {'s':>7} {'s/MP-step':>9} {'style':>6} {'w2':>6} {'content':>7} {'edges':>6} {'MAD ref':>7}")
    crops, reference = [], None

    def report(label: str, crop: np.ndarray, timing: str, note: str = "") -> None:
        s = judge.score(crop)
        mad = float(np.mean(np.abs(crop - reference))) if reference is not None else float("nan")
        scores = f"{s['style']:6.3f} {s['w2']:6.3f} {s['content']:7.3f} {s['edges']:6.3f} {mad:7.2f}"
        print(f"{label:>8} {timing} {scores}{note}", flush=True)
        crops.append(crop)

    for text in args.variants.split(","):
        passes, steps = parse_variant(text)
        x = x_start.copy()
        t = time.perf_counter()
        for _ in range(passes):
            x, _ = run.optimize(x, steps, targets, None, len(schedule) - 1, warm=True)
            x = np.clip(x, 0.0, 255.0)
        seconds = time.perf_counter() - t
        if reference is None and passes:
            reference = x[inner]
        per = seconds / max(1, passes * steps) / (x.shape[0] * x.shape[1] / 1e6)
        report(text, x[inner], f"{seconds:7.0f} {per:9.2f}")
    if args.result:
        whole = np.load(args.result)
        if whole.shape[:2] != (th, tw):
            raise SystemExit(f"--result: expected a {tw}x{th} image, received {whole.shape[1]}x{whole.shape[0]}")
        report(
            "result",
            np.clip(whole[..., :3], 0.0, 255.0)[y0:y1, x0:x1][inner],
            f"{'':>7} {'':>9}",
            f"   ({args.result})",
        )
    out = common.OUT / "last-scale-crops.png"
    common.save_png(side_by_side(crops), out)
    if args.figure:
        k = min(448, c)
        m = (c - k) // 2
        common.save_png(side_by_side([x[m : m + k, m : m + k] for x in crops]), args.figure)
        print(f"figure: {args.figure}")
    for text, crop in zip(args.variants.split(","), crops):
        np.save(common.OUT / f"last-scale-crop-{key[:10]}-{text}.npy", crop)
    print(f"crops ({args.variants}{',result' if args.result else ''}, left to right): {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
