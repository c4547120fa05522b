"""Speed at 512 px against the tutorial yardstick, on this machine, in one run.

Prints, for the sample photo at 512 px (long side) and the sample style:
- seconds per iteration (one value and gradient of the objective, and one step of the default
  pipeline's L-BFGS at its last scale) and the fraction of the CPU's peak FLOP rate it reaches;
- peak memory (RSS) of a process doing only that, and of the whole default run;
- the yardstick's (baseline_tutorial.py: Adam, lr 0.02, 1000 steps at 512 px) final loss and
  wall time, and the time our default pipeline (stylize(): coarse to fine, optimiser auto, default
  StyleConfig but the HED VGG16 network) needs to reach that same loss, and the ratio; then the
  other way round: the yardstick's time and work to each pipeline's own final loss.

The loss compared is one objective: the 512 px objective (content targets of the 512 px photo,
style Grams of the style at 512 px), evaluated with a forward pass on each image the pipeline
reported (clipped to 0..255, as the result would be; images of the coarse scale upscaled as the
engine upscales them). The pipeline's clock runs from the call of stylize() (building the
network, tracing and targets included) to the report of that image; the evaluations happen
after the run and are not counted. The yardstick's clock likewise includes its set-up.

Each part runs in its own child process (so peak memory is its own); the run takes about as
long as the yardstick (1000 steps: about 17 minutes on a quiet 2-core CPU) plus 5-10 minutes. Use --baseline-steps for
quick runs (the figures printed then say so) or --baseline-json to reuse a stored yardstick.

    python bench/bench_speed.py [--baseline-steps 1000] [--size 512]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

SIZE = 512


# Children -----------------------------------------------------------------------------------


def child_steps(size: int, steps: int) -> dict:
    """Seconds per value-and-gradient at `size`, and this process's peak memory."""
    import numpy as np

    t0 = time.perf_counter()
    content = common.content_at(size)
    problem = common.Problem(content, common.style_image())
    x = content.copy()
    problem.value_and_grad(x)  # trace
    setup_s = time.perf_counter() - t0
    times = common.time_steps(lambda: problem.value_and_grad(x), steps, warmup=1)
    h, w = content.shape[:2]
    cfg = problem.config
    from nst_keras.features import deepest_layer

    last = deepest_layer(cfg.backbone, cfg.content_layers + cfg.style_layers)
    return {
        "what": "steps",
        "size": [h, w],
        "setup_s": setup_s,
        "step_s_median": float(np.median(times)),
        "step_s_min": float(np.min(times)),
        "times": times,
        "forward_gflop": common.conv_flops(cfg.backbone, h, w, last) / 1e9,
        "last_layer": last,
        "peak_rss_gib": common.peak_rss_gib(),
    }


def child_pipeline(size: int, preset: str, changes: dict, name: str) -> dict:
    """Run stylize() with the default settings (+ `changes`); report (time, work, 512 px loss) of its images."""
    content = common.content_at(size)
    asked, changes = changes, dict(changes)
    schedule = changes.pop("preset_iterations", None)  # bench only: [first, last] for the preset
    config = common.bench_config(preset=preset, **changes)
    result = common.run_pipeline(
        content,
        common.style_image(),
        config,
        snapshot_every=10,
        patch_iterations=None if schedule is None else [int(n) for n in schedule],
    )
    common.save_png(result.pop("output"), common.OUT / f"pipeline-{name}.png")
    result.pop("calls")
    return {"what": "pipeline", "preset": preset, "changes": asked, **result}


# The run --------------------------------------------------------------------------------------


def time_to_reach(curve: list, target: float, column: int = 0):
    """First time (or work, column 3) at which the curve's loss is at or below target (None if never)."""
    for point in curve:
        if point[-1] <= target:
            return point[column]
    return None


def yardstick_time_to(trajectory: list, target: float):
    """Seconds the yardstick took to reach `target` (linear between its recorded points; None if never)."""
    previous = None
    for t, loss in trajectory:
        if loss <= target:
            if previous is None or previous[1] == loss:
                return t
            t0, l0 = previous
            return t0 + (t - t0) * (l0 - target) / (l0 - loss)
        previous = (t, loss)
    return None


def yardstick_steps(baseline: dict) -> list:
    """The yardstick's trajectory as (evaluations so far, loss): baseline_tutorial.py keeps every
    (steps // 200)-th point (the loss before that step) and the last one."""
    traj = baseline.get("trajectory", [])
    stride = max(1, baseline.get("steps", 0) // 200)
    points = [(i * stride + 1, loss) for i, (_, loss) in enumerate(traj[:-1])]
    return points + [(baseline.get("steps", len(traj)), traj[-1][1])] if traj else []


def equal_loss_rows(baseline: dict, pipelines: dict) -> list:
    """Per pipeline: its final loss, time and work, the yardstick's time and work to the same loss, and the ratios.

    Work counts objective evaluations in full-size equivalents, so its ratio does not depend on
    how fast the machine was in each run (a reused yardstick ran at another moment).
    """
    rows = []
    for preset, res in pipelines.items():
        theirs = yardstick_time_to(baseline.get("trajectory", []), res["final_loss"])
        their_work = yardstick_time_to(yardstick_steps(baseline), res["final_loss"])
        rows.append(
            [
                f"pipeline {preset}",
                res["final_loss"],
                res["total_s"],
                theirs,
                theirs / res["total_s"] if theirs else None,
                res["eval_units"],
                their_work,
                their_work / res["eval_units"] if their_work else None,
            ]
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--baseline-steps", type=int, default=1000)
    parser.add_argument(
        "--baseline-json",
        help="reuse a yardstick result (a JSON line of baseline_tutorial.py, or an earlier run's speed.json)",
    )
    parser.add_argument("--loss-scale", type=float, default=None, help="the yardstick's loss scale (default its own)")
    parser.add_argument("--steps", type=int, default=8, help="timed value-and-gradient calls")
    parser.add_argument("--child", choices=("steps", "pipeline"), help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="normal", help=argparse.SUPPRESS)
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help='also run the pipeline with these StyleConfig changes, e.g. pyramid=\'{"optimizer": "adam"}\'; '
        '"preset_iterations": [FIRST, LAST] changes the preset\'s iterations at the first and last scale',
    )
    parser.add_argument("--changes", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--name", default="normal", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "steps":
        common.emit(child_steps(args.size, args.steps))
        return 0
    if args.child == "pipeline":
        common.emit(child_pipeline(args.size, args.preset, json.loads(args.changes), args.name))
        return 0

    common.OUT.mkdir(parents=True, exist_ok=True)
    me = str(Path(__file__).resolve())
    log = open(common.OUT / "bench_speed.stderr.log", "a")
    t_run = time.perf_counter()
    print(common.machine_line(), flush=True)
    load_start = os.getloadavg()

    steps = common.run_child([me, "--child", "steps", "--size", str(args.size), "--steps", str(args.steps)], log=log)
    print(f"[steps done, {time.perf_counter() - t_run:.0f} s]", flush=True)
    pipelines = {"normal": common.run_child([me, "--child", "pipeline", "--size", str(args.size)], log=log)}
    for spec in args.also:
        name, _, changes = spec.partition("=")
        json.loads(changes)  # fail early on a typo
        cmd = [me, "--child", "pipeline", "--size", str(args.size), "--changes", changes, "--name", name]
        pipelines[name] = common.run_child(cmd, log=log)
    print(f"[pipeline done, {time.perf_counter() - t_run:.0f} s]", flush=True)

    if args.baseline_json:
        baseline = json.loads(Path(args.baseline_json).read_text().strip().splitlines()[-1])
        baseline = baseline.get("baseline", baseline)  # a whole speed.json of an earlier run: its yardstick
        baseline_note = f"reused from {args.baseline_json}"
    else:
        cmd = [
            str(common.BENCH / "baseline_tutorial.py"),
            "--steps",
            str(args.baseline_steps),
            "--size",
            str(args.size),
        ]
        if args.loss_scale is not None:
            cmd += ["--loss-scale", str(args.loss_scale)]
        baseline = common.run_child(cmd, log=log)
        baseline_note = "measured in this run"
        (common.OUT / f"baseline-{args.baseline_steps}.json").write_text(json.dumps(baseline) + "\n")
    print(f"[baseline done, {time.perf_counter() - t_run:.0f} s]", flush=True)

    target = baseline["final_loss"]
    if time_to_reach(pipelines["normal"]["curve"], target) is None:
        cmd = [me, "--child", "pipeline", "--size", str(args.size), "--preset", "high", "--name", "high"]
        pipelines["high"] = common.run_child(cmd, log=log)
    (common.OUT / "speed.json").write_text(json.dumps({"steps": steps, "pipelines": pipelines, "baseline": baseline}))

    cpu = common.cpu_peak_gflops()
    h, w = steps["size"]
    fwd = steps["forward_gflop"]
    print()
    print(f"Speed at {w}x{h} px (sample photo, sample style), HED VGG16 to {steps['last_layer']}, float32, CPU")
    print(f"yardstick: {baseline.get('steps')} Adam steps ({baseline_note}), loss scale {baseline.get('loss_scale')}")
    print()
    rows = [
        [f"value+gradient of the objective (median of {len(steps['times'])})", steps["step_s_median"], "s"],
        ["  same, fastest call", steps["step_s_min"], "s"],
        ["L-BFGS iteration, default pipeline, last scale (median)", pipelines["normal"]["last_scale_step_s"], "s"],
        ["Adam step of the yardstick (mean)", baseline["s_per_step"], "s"],
        ["peak RSS, process doing only value+gradient", steps["peak_rss_gib"], "GiB"],
        ["peak RSS, whole default run (stylize)", pipelines["normal"]["peak_rss_gib"], "GiB"],
        ["peak RSS, yardstick", baseline.get("peak_rss_gib"), "GiB"],
    ]
    print(common.table(["measure", "value", "unit"], rows))

    print()
    flops_2x = 2 * fwd
    flops_3x = 3 * fwd
    rate = flops_2x / steps["step_s_min"]
    print(f"FLOPs of one forward pass (3x3 convs up to {steps['last_layer']}): {fwd:.1f} GFLOP")
    print(
        "one value+gradient = forward + gradient to the input only (the weights are frozen, so no weight "
        f"gradients) = 2x forward = {flops_2x:.1f} GFLOP (3x forward, the training convention: {flops_3x:.1f})"
    )
    print(f"CPU peak: {cpu['assumption']} = {cpu['peak_gflops']:.0f} GFLOP/s")
    rows = [
        ["2x forward / fastest call", rate, rate / cpu["peak_gflops"]],
        [
            "2x forward / median call",
            flops_2x / steps["step_s_median"],
            flops_2x / steps["step_s_median"] / cpu["peak_gflops"],
        ],
        [
            "3x forward / fastest call",
            flops_3x / steps["step_s_min"],
            flops_3x / steps["step_s_min"] / cpu["peak_gflops"],
        ],
    ]
    print(common.table(["count", "GFLOP/s", "fraction of peak"], rows))

    print()
    base_units = baseline["steps"] + 1  # value+gradient evaluations at full size (and the final loss)
    rows = [
        [
            f"yardstick (tutorial Adam, {baseline['steps']} steps)",
            baseline["final_loss"],
            baseline["wall_s"],
            None,
            1.0,
            base_units,
            None,
            1.0,
        ]
    ]
    for preset, res in pipelines.items():
        reach = time_to_reach(res["curve"], target)
        units = time_to_reach(res["curve"], target, column=3)
        rows.append(
            [
                f"pipeline {preset} {res.get('changes') or ''} {res['schedule']}",
                res["final_loss"],
                res["total_s"],
                reach,
                (baseline["wall_s"] / reach) if reach else None,
                res["eval_units"],
                units,
                (base_units / units) if units else None,
            ]
        )
    headers = [
        "run",
        "final loss",
        "total s",
        "s to reach",
        "speed-up (time)",
        "work",
        "work to reach",
        "speed-up (work)",
    ]
    print(f"time and work to reach the yardstick's final loss {target:.4f} (512 px objective)")
    print(common.table(headers, rows))
    print(
        "work: objective evaluations in full-size (512 px) equivalents, each weighted by its pixels; "
        "it does not change with the machine's load"
    )
    print()
    print("the other way round: the yardstick's time and work to each pipeline's own final loss")
    headers = [
        "run",
        "its final loss",
        "its time s",
        "yardstick s to that loss",
        "speed-up (time)",
        "its work",
        "yardstick work to that loss",
        "speed-up (work)",
    ]
    print(common.table(headers, equal_loss_rows(baseline, pipelines)))
    print(f"load average at start / end: {load_start} / {os.getloadavg()}")
    print()
    print("yardstick loss after n steps (s since start):")
    traj = baseline.get("trajectory", [])
    marks = [traj[i] for i in range(0, len(traj), max(1, len(traj) // 8))] + traj[-1:]
    print("  " + "  ".join(f"{v:.3f}@{t:.0f}s" for t, v in marks))
    print("default pipeline loss at 512 px (s since start):")
    curve = pipelines["normal"]["curve"]
    marks = [curve[i] for i in range(0, len(curve), max(1, len(curve) // 10))] + curve[-1:]
    print("  " + "  ".join(f"{c[-1]:.3f}@{c[0]:.0f}s(scale {c[1]} step {c[2]})" for c in marks))
    print(f"\n[total {time.perf_counter() - t_run:.0f} s]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
