"""How time and memory grow with the output size, the planner's estimates, and tile seams.

Each run is a fresh child process that calls nst_keras.stylize() with the default preset
(HED VGG16 weights, offline), the content being the sample photo resized to the output size
(3:2; the 4000x3000 case is the photo cropped to 4:3). Printed per size: wall time, time of
each scale, peak RSS of the process, and the planner's estimate (engine.plan(), measured
time model) with the ratio measured / estimated.

A run can be cut short: --last-scale-steps N stops after N steps of the last scale (counted
across its tile visits when it is tiled: the first visit has steps_per_tile of them); its total
is then reported as an extrapolation from the measured part (labelled as such: the remaining
steps of the scale at the measured rate). Peak memory needs at least lbfgs_history + 1 steps in
one piece or visit: the L-BFGS history is full only then.

Seams (--seam): a 2048 px output with tiles forced (StyleConfig.tile_size) against an untiled
run with the same settings: mean absolute difference (grey levels) within a band of pixels
around each tile border versus elsewhere, and a crop across a border saved as
bench/out/seam-crop.png (untiled | tiled | difference x4).

    python bench/bench_scaling.py [--sizes 512,1024,2048,4000x3000] [--last-scale-steps N]
    python bench/bench_scaling.py --seam [--seam-tile 1024] [--seam-reference bench/out/scale-2048.npy]
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

ME = str(Path(__file__).resolve())
SIZES = "512,1024,2048,4000x3000"


def parse_size(text: str) -> tuple:
    """'2048' -> (2048, None): long side, photo's aspect; '4000x3000' -> (4000, 4/3)."""
    if "x" in text:
        w, h = (int(v) for v in text.split("x"))
        return max(w, h), w / h
    return int(text), None


def child_run(size_text: str, last_scale_steps: int, tile_size, save: str | None, changes: dict) -> dict:
    import numpy as np

    import nst_keras
    from nst_keras import device, engine

    long_side, aspect = parse_size(size_text)
    content = common.content_at(long_side, aspect)
    style = common.style_image()
    config = common.bench_config(**{"max_size": 0, "tile_size": tile_size, **changes})

    t = time.perf_counter()
    plan = None
    plan_error = None
    try:
        plan = engine.plan(content.shape, config, style_shapes=[style.shape], measure=True)
    except Exception as error:  # noqa: BLE001 - the planner may not exist in this version
        plan_error = f"{type(error).__name__}: {error}"
    plan_s = time.perf_counter() - t

    events = []  # (t, scale, step, num_steps, tile)
    stop = {"flag": False}

    peaks = {}  # scale -> peak RSS of the process by that scale's last report (GiB): which scale raised it

    def on_progress(p):
        events.append((time.perf_counter() - t0, p.scale, p.step, p.num_steps, list(p.tile) if p.tile else None))
        peaks[p.scale] = common.peak_rss_gib()
        if p.scale == p.num_scales:
            stop["last_steps"] = stop.get("last_steps", 0) + 1
            if last_scale_steps and stop["last_steps"] >= last_scale_steps:
                stop["flag"] = True

    t0 = time.perf_counter()
    cancelled = False
    try:
        out = nst_keras.stylize(content, style, config, on_progress=on_progress, should_stop=lambda: stop["flag"])
    except nst_keras.Cancelled as c:
        out = c.image
        cancelled = True
    wall = time.perf_counter() - t0
    peak = common.peak_rss_gib()
    if save and out is not None and not cancelled:
        np.save(save, out.astype(np.float32))
        common.save_png(out, str(save).replace(".npy", ".png"))

    # Per-scale times: from the scale's first report minus its first step, to its last report.
    scales = {}
    prev_end = 0.0
    for t_ev, scale, _step, n, tile in events:
        s = scales.setdefault(
            scale, {"start": prev_end, "first": t_ev, "end": t_ev, "steps": 0, "num_steps": n, "tiles": None}
        )
        s["end"] = t_ev
        s["steps"] += 1
        if tile:
            s["tiles"] = tile
        prev_end = t_ev
    # The first scale's start includes set-up (network, targets): keep it separate.
    schedule = engine.plan_scales(config, *content.shape[:2])
    rows = []
    for i, (h, w, n) in enumerate(schedule, start=1):
        s = scales.get(i)
        row = {"scale": i, "size": [h, w], "iterations": n}
        if s:
            row.update(seconds=s["end"] - s["start"], steps_reported=s["steps"], tiles=s["tiles"])
            row.update(peak_rss_gib_by_then=peaks.get(i))
        if plan and i - 1 < len(plan["scales"]):
            ps = plan["scales"][i - 1]
            row.update(est_seconds=ps["est_seconds"], est_peak_bytes=ps["est_peak_bytes"], tiled=ps["tiled"])
            if ps["tiled"]:
                row.update(
                    tile_size=ps.get("tile_size"), passes=ps.get("passes"), tiles_per_pass=ps.get("tiles_per_pass")
                )
        rows.append(row)
    # Extrapolate an unfinished last scale at its measured rate.
    extrapolated = None
    if cancelled and scales:
        last = max(scales)
        s = scales[last]
        h, w, n = schedule[last - 1]
        if s["tiles"]:
            # Steps of every visit at the measured rate, plus each further visit's content
            # targets (one forward pass of a tile: taken as half a step, an estimate).
            visits = s["tiles"][1]
            per_step = (s["end"] - s["first"]) / max(1, s["steps"] - 1)
            steps_per_visit = s["num_steps"]
            scale_total = (s["first"] - s["start"]) + per_step * (steps_per_visit * visits - 1)
            scale_total += 0.5 * per_step * (visits - 1)
        elif s["steps"] > 1:
            scale_total = (s["first"] - s["start"]) + (s["end"] - s["first"]) / (s["steps"] - 1) * (n - 1)
        else:
            scale_total = (s["end"] - s["start"]) * n
        extrapolated = s["start"] + scale_total
        rows[last - 1]["seconds_extrapolated"] = scale_total
    return {
        "what": "scaling",
        "precision": device.compute_dtype(config.precision),
        "size": list(content.shape[:2]),
        "megapixels": content.shape[0] * content.shape[1] / 1e6,
        "wall_s": wall,
        "cancelled": cancelled,
        "extrapolated_total_s": extrapolated,
        "first_report_s": events[0][0] if events else None,
        "peak_rss_gib": peak,
        "plan": plan,
        "plan_error": plan_error,
        "plan_s": plan_s,
        "scales": rows,
        "load": os.getloadavg(),
    }


def seam_report(reference_path: str, tiled_path: str, grid_info: dict, band: int, crop_out: Path) -> dict:
    """Mean |tiled - untiled| near tile borders vs elsewhere, and a crop PNG across one border."""
    import numpy as np

    a = np.load(reference_path)[..., :3]
    b = np.load(tiled_path)[..., :3]
    diff = np.abs(a - b).mean(axis=-1)
    h, w = diff.shape
    near = np.zeros((h, w), bool)
    borders_y, borders_x = grid_info["borders_y"], grid_info["borders_x"]
    for y in borders_y:
        near[max(0, y - band) : min(h, y + band), :] = True
    for x in borders_x:
        near[:, max(0, x - band) : min(w, x + band)] = True
    result = {
        "near_mean": float(diff[near].mean()) if near.any() else float("nan"),
        "elsewhere_mean": float(diff[~near].mean()) if (~near).any() else float("nan"),
        "near_p99": float(np.percentile(diff[near], 99)) if near.any() else float("nan"),
        "elsewhere_p99": float(np.percentile(diff[~near], 99)) if (~near).any() else float("nan"),
        "overall_mean": float(diff.mean()),
        "band_px": band,
        "borders_y": borders_y,
        "borders_x": borders_x,
        "size": [h, w],
    }
    # Crop 256x256 centred on the first vertical border (or the centre).
    cx = borders_x[0] if borders_x else w // 2
    cy = borders_y[0] if borders_y else h // 2
    y0 = min(max(0, cy - 128), h - 256)
    x0 = min(max(0, cx - 128), w - 256)
    crop = [a[y0 : y0 + 256, x0 : x0 + 256], b[y0 : y0 + 256, x0 : x0 + 256]]
    d = np.clip(np.abs(crop[0] - crop[1]) * 4.0, 0, 255)
    sep = np.full((256, 4, 3), 255.0, np.float32)
    common.save_png(np.concatenate([crop[0], sep, crop[1], sep, d], axis=1), crop_out)
    result["crop"] = {"x0": x0, "y0": y0, "path": str(crop_out)}
    return result


def tile_borders(plan: dict, size: list, tile: int, changes: dict) -> dict:
    """Where tiles meet at the last scale (the inner edges of every pass's windows)."""
    from nst_keras import tiling

    ps = plan["scales"][-1]
    borders_y, borders_x = set(), set()
    grid = getattr(tiling, "TileGrid", None)
    info = {k: ps.get(k) for k in ("tile_size", "overlap", "feather", "passes", "tiles_per_pass")}
    try:
        config = common.bench_config(max_size=0, tile_size=tile, **changes)
        from nst_keras import engine, planner

        coefficients = planner.calibrate(config, measure=False)
        full = planner.make_plan(tuple(size), config, engine.plan_scales(config, *size), time_coefficients=coefficients)
        g = full.scales[-1].grid
        for p in range(g.passes):
            for y0, y1, x0, x1 in g.windows(p):
                for v in (y0, y1):
                    if 0 < v < size[0]:
                        borders_y.add(int(v))
                for v in (x0, x1):
                    if 0 < v < size[1]:
                        borders_x.add(int(v))
    except Exception as error:  # noqa: BLE001 - fall back to a regular grid of tile_size
        info["grid_error"] = f"{type(error).__name__}: {error}"
        t = tile
        borders_y = set(range(t, size[0], t))
        borders_x = set(range(t, size[1], t))
    del grid
    info.update(borders_y=sorted(borders_y), borders_x=sorted(borders_x))
    return info


def run_size(size_text, args, log, tile_size=None, save=None) -> dict:
    changes = args.changes
    cmd = [ME, "--child", size_text, "--last-scale-steps", str(args.last_scale_steps if tile_size is None else 0)]
    if tile_size:
        cmd += ["--tile", str(tile_size)]
    if save:
        cmd += ["--save", str(save)]
    if changes:
        cmd += ["--changes", json.dumps(changes)]
    res = common.run_child(cmd, log=log)
    name = f"scaling-{size_text}{'-tiled' if tile_size else ''}{args.tag}.json"
    (common.OUT / name).write_text(json.dumps({**res, "changes": changes}))
    return res


def print_scaling(results: list) -> None:
    rows = []
    for r in results:
        if "size" not in r:
            rows.append(["failed", None, None, None, None, None, None, None, None])
            continue
        plan = r.get("plan") or {}
        est_s = plan.get("est_seconds")
        est_gib = plan.get("est_peak_bytes", 0) / 2**30 if plan else None
        total = r["extrapolated_total_s"] if r["cancelled"] else r["wall_s"]
        label = f"{r['size'][1]}x{r['size'][0]}" + (" (extrapolated)" if r["cancelled"] else "")
        tiles = [s.get("tiles") for s in r["scales"] if s.get("tiled")]
        rows.append(
            [
                label,
                r["megapixels"],
                total,
                r["peak_rss_gib"],
                est_s,
                total / est_s if est_s else None,
                est_gib,
                r["peak_rss_gib"] / est_gib if est_gib else None,
                "yes" if any(s.get("tiled") for s in r["scales"]) else "no",
            ]
        )
        del tiles
    headers = ["output", "MP", "wall s", "peak RSS GiB", "plan s", "wall/plan", "plan GiB", "RSS/plan", "tiled"]
    print(common.table(headers, rows))
    print()
    rows = []
    for r in results:
        for s in r.get("scales", []):
            rows.append(
                [
                    f"{r['size'][1]}x{r['size'][0]}",
                    s["scale"],
                    f"{s['size'][1]}x{s['size'][0]}",
                    s["iterations"],
                    s.get("seconds"),
                    s.get("seconds_extrapolated"),
                    s.get("est_seconds"),
                    (s.get("seconds_extrapolated") or s.get("seconds") or 0) / s["est_seconds"]
                    if s.get("est_seconds") and s.get("seconds")
                    else None,
                    f"{s['peak_rss_gib_by_then']:.2f}" if s.get("peak_rss_gib_by_then") else None,
                    f"{s['est_peak_bytes'] / 2**30:.2f}" if s.get("est_peak_bytes") else None,
                    f"{s.get('tile_size')} x{s.get('tiles_per_pass')} x{s.get('passes')}" if s.get("tiled") else "-",
                ]
            )
    headers = ["output", "scale", "size", "steps", "measured s", "extrapolated s", "plan s", "meas/plan"]
    headers += ["peak RSS by then GiB", "plan GiB", "tiles"]
    print("per scale (scale 1 includes building the network and the targets):")
    print(common.table(headers, rows))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=SIZES)
    parser.add_argument(
        "--last-scale-steps", type=int, default=0, help="stop after N optimiser steps of the last scale (all tiles)"
    )
    parser.add_argument("--cut", default="4000x3000", help="sizes to which --last-scale-steps applies")
    parser.add_argument("--seam", action="store_true", help="the seam check instead of the size table")
    parser.add_argument("--seam-size", default="2048")
    parser.add_argument("--seam-tile", type=int, default=1024)
    parser.add_argument("--seam-reference", help="an untiled result (.npy) made with the same settings")
    parser.add_argument("--seam-band", type=int, default=16)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tile", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--save", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--changes", type=json.loads, default="{}", help="StyleConfig changes (JSON) for every run")
    parser.add_argument("--tag", default="", help="suffix of the result files (joined with a '-')")
    args = parser.parse_args(argv)
    args.tag = f"-{args.tag.lstrip('-')}" if args.tag.strip("-") else ""

    if args.child:
        common.emit(child_run(args.child, args.last_scale_steps, args.tile, args.save, args.changes))
        return 0

    common.OUT.mkdir(parents=True, exist_ok=True)
    log = open(common.OUT / "bench_scaling.stderr.log", "a")
    print(common.machine_line())
    print(f"load average at start: {os.getloadavg()}", flush=True)
    cut = set(args.cut.split(","))

    if args.seam:
        ref = args.seam_reference
        if not ref:
            ref = str(common.OUT / f"scale-{args.seam_size}{args.tag}.npy")
            saved = args.last_scale_steps
            args.last_scale_steps = 0
            print(f"[untiled reference {args.seam_size}]", flush=True)
            run_size(args.seam_size, args, log, save=ref)
            args.last_scale_steps = saved
        tiled_path = str(common.OUT / f"scale-{args.seam_size}-tiled{args.tag}.npy")
        print(f"[tiled run, tile_size {args.seam_tile}]", flush=True)
        res = run_size(args.seam_size, args, log, tile_size=args.seam_tile, save=tiled_path)
        print_scaling([res])
        if res.get("plan") and Path(tiled_path).exists():
            info = tile_borders(res["plan"], res["size"], args.seam_tile, args.changes)
            rep = seam_report(ref, tiled_path, info, args.seam_band, common.OUT / "seam-crop.png")
            (common.OUT / "seam.json").write_text(json.dumps({**rep, "grid": info}))
            print()
            print(
                f"seams: {res['size'][1]}x{res['size'][0]}, tiles forced at {args.seam_tile} px "
                f"(overlap {info.get('overlap')}, feather {info.get('feather')}, passes {info.get('passes')}); "
                f"|tiled - untiled| in grey levels (0..255), mean over RGB"
            )
            rows = [
                [f"within {args.seam_band} px of a tile border", rep["near_mean"], rep["near_p99"]],
                ["elsewhere", rep["elsewhere_mean"], rep["elsewhere_p99"]],
                ["whole image", rep["overall_mean"], None],
            ]
            print(common.table(["where", "mean |diff|", "99th percentile"], rows))
            print(f"borders x={rep['borders_x']} y={rep['borders_y']}; crop: {rep['crop']}")
        else:
            print(f"no seam figures: plan {res.get('plan_error')}, tiled output {Path(tiled_path).exists()}")
        return 0

    results = []
    for size_text in args.sizes.split(","):
        t = time.perf_counter()
        saved = args.last_scale_steps
        if size_text not in cut:
            args.last_scale_steps = 0
        save = common.OUT / f"scale-{size_text}{args.tag}.npy"
        res = run_size(size_text, args, log, save=save)
        args.last_scale_steps = saved
        results.append(res)
        print(f"[{size_text}: {time.perf_counter() - t:.0f} s, load {os.getloadavg()}]", flush=True)
    print()
    changes = args.changes
    network = f"{changes.get('backbone', common.BACKBONE).upper()}, " + (
        "HED weights" if "weights" not in changes else f"weights {changes['weights']}"
    )
    preset = changes.get("preset", "normal")
    precision = ", ".join(sorted({str(r.get("precision")) for r in results if r.get("precision")})) or "?"
    print(f"{preset} preset, {network}, {precision}, CPU; each size in a fresh process; changes {json.dumps(changes)}")
    print_scaling(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
