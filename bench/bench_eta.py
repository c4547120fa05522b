"""How close the planner's time estimate comes to the run, and what finished runs teach it.

Runs the default pipeline (HED VGG16 weights, offline, `--precision auto`) several times in turn, each
in a fresh process, on the sample photo at the given sizes, with a private cache folder that starts
empty: the first run measures the calibration (and races the precision), and every finished run on a
quiet machine moves the calibration entry's correction toward measured / planned
(nst_keras.planner.calibration.learn_from_run). Printed per run: the size, the correction the plan
used, the plan's estimate of the run (engine.plan: setup and every scale), the measured wall time of
stylize(), their ratio, and the correction afterwards.

    .venv/bin/python bench/bench_eta.py [--sizes 512,512,768] [--keep-cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

ME = str(Path(__file__).resolve())


def child(size: int) -> dict:
    import nst_keras
    from nst_keras import engine, planner

    content = common.content_at(size)
    style = common.style_image()
    config = common.bench_config(max_size=0)
    plan = engine.plan(content.shape, config, style_shapes=[style.shape], measure=True)
    start = time.perf_counter()
    nst_keras.stylize(content, style, config)
    wall = time.perf_counter() - start
    after = planner.calibrate(config, measure=False)
    return {
        "size": list(content.shape[:2]),
        "planned_s": plan["est_seconds"],
        "time_model": plan["time_model"],
        "correction_used": plan["time_correction"],
        "wall_s": wall,
        "correction_after": after.get("run_time_scale", 1.0),
        "runs_learnt": after.get("runs_learnt", 0),
        "load_per_core": planner.load_per_core(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="512,512,768", help="the long side of each run, in turn")
    parser.add_argument("--keep-cache", help="use (and keep) this cache folder instead of a fresh temporary one")
    args = parser.parse_args(argv)
    if args.child:
        common.emit(child(args.child))
        return 0
    cache = args.keep_cache or tempfile.mkdtemp(prefix="bench-eta-cache-")
    env = {"NST_KERAS_CACHE_DIR": cache}
    print(common.machine_line())
    print(f"cache folder {cache} ({'kept' if args.keep_cache else 'fresh, empty'})")
    rows, results = [], []
    for i, size in enumerate(int(v) for v in args.sizes.split(",")):
        r = common.run_child([ME, "--child", str(size)], env=env)
        results.append(r)
        if "wall_s" not in r:
            rows.append([i + 1, size, "failed", "", "", "", "", ""])
            continue
        h, w = r["size"]
        rows.append(
            [
                i + 1,
                f"{w}x{h}",
                r["time_model"],
                f"{r['correction_used']:.3f}",
                f"{r['planned_s']:.0f} s",
                f"{r['wall_s']:.0f} s",
                f"{r['wall_s'] / r['planned_s']:.2f}",
                f"{r['correction_after']:.3f}",
            ]
        )
        print(f"run {i + 1}: {json.dumps(r)}", flush=True)
    print(
        common.table(
            ["run", "size", "time model", "correction used", "planned", "measured", "measured / planned", "after"],
            rows,
        )
    )
    out = common.RESULTS / "eta.json"
    os.makedirs(out.parent, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
