"""Which knobs make the default pipeline faster on this machine, each measured against the default.

Sections (each prints a table with the ratio against the current default, measured in the same
run; pick some with --only):

  graph     one value+gradient at 512 px: tf.function (default), eager, tf.function with XLA
            (jit_compile), the whole conv stack instead of the network cut at the deepest layer
            used, mixed float16 on this CPU. Variants alternate in rounds (the machine is shared).
  threads   the same step in a fresh process per setting: TensorFlow's intra-/inter-op threads,
            oneDNN off.
  driver    the L-BFGS driver: scipy's L-BFGS-B in float64 (the engine's previous driver, kept
            here as the reference) against the engine's float32 L-BFGS, on the real 512 px
            problem (same start, same history): bookkeeping per iteration, evaluations, loss
            after 10/25/40 iterations; and the cost of the host copies around one evaluation.
  history   the whole default run at 512 px with L-BFGS history 5 / 10 / 20 / 50.
  schedule  the whole run at 512 px with other splits of about the same work between the scales
            (and a third, 128 px scale), final loss at about equal work and time.

    python bench/bench_knobs.py [--only graph,threads,driver,history,schedule] [--size 512]
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

SECTIONS = ("graph", "threads", "driver", "history", "schedule")
ME = str(Path(__file__).resolve())


# graph ------------------------------------------------------------------------------------------


def child_graph(size: int, rounds: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from nst_keras.features import FeatureExtractor

    content = common.content_at(size)
    style = common.style_image()
    base = common.Problem(content, style)
    cfg = base.config
    x = tf.convert_to_tensor(content[None])
    args = (base.content_targets, base.style_targets, base.tv_reference)

    eager = base.objective._value_and_grad_eager
    xla = tf.function(eager, jit_compile=True)
    per_shape = tf.function(eager)  # no input signature: traced for this exact shape
    layers_full = tuple(dict.fromkeys(cfg.content_layers + cfg.style_layers)) + ("block5_conv3",)
    full = common.Problem(
        content, style, cfg, extractor=FeatureExtractor(cfg.backbone, layers_full, "max", cfg.weights)
    )
    variants = {
        "tf.function, cut at block5_conv2 (default)": lambda: base.objective.value_and_grad(x, *args)[0].numpy(),
        "eager (no tf.function)": lambda: eager(x, *args)[0].numpy(),
        "tf.function + XLA jit_compile": lambda: xla(x, *args)[0].numpy(),
        "tf.function traced per shape (no None dims)": lambda: per_shape(x, *args)[0].numpy(),
        "whole conv stack (to block5_conv3)": lambda: full.objective.value_and_grad(x, *args)[0].numpy(),
    }
    if os.environ.get("BENCH_FLOAT16", "1") == "1":
        half = FeatureExtractor(cfg.backbone, layers_full[:-1], "max", cfg.weights, dtype="float16")
        hp = common.Problem(content, style, cfg, extractor=half)
        variants["mixed float16 on this CPU"] = lambda: hp.objective.value_and_grad(x, *args)[0].numpy()
    times = {name: [] for name in variants}
    compile_s = {}
    for name, fn in variants.items():
        t = time.perf_counter()
        fn()
        compile_s[name] = time.perf_counter() - t
    for r in range(rounds):
        for name, fn in variants.items():
            if "float16" in name and r > 0:
                continue  # one timed call is enough to see it
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {
        "times": times,
        "median": {k: float(np.median(v)) for k, v in times.items()},
        "first_call_s": compile_s,
        "size": list(content.shape[:2]),
    }


def section_graph(args, log) -> str:
    res = common.run_child([ME, "--child", "graph", "--size", str(args.size), "--rounds", "4"], log=log)
    med = res["median"]
    ref = med["tf.function, cut at block5_conv2 (default)"]
    rows = [
        [name, med[name], len(res["times"][name]), res["first_call_s"][name], med[name] / ref] for name in res["times"]
    ]
    h, w = res["size"]
    out = f"graph: one value+gradient at {w}x{h}, variants alternating in rounds\n"
    out += common.table(["variant", "median s", "calls", "first call s", "time vs default"], rows)
    return out


# threads ----------------------------------------------------------------------------------------


def child_threads(size: int, intra: int, inter: int, steps: int) -> dict:
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    from nst_keras import device

    # the precision `--precision auto` uses here (the cached float32/bfloat16 race; float32 until it exists)
    dtype = device.compute_dtype("auto")
    content = common.content_at(size)
    problem = common.Problem(content, common.style_image(), dtype=dtype)
    times = common.time_steps(lambda: problem.value_and_grad(content), steps, warmup=1)
    return {"median": float(np.median(times)), "times": times, "dtype": dtype}


def section_threads(args, log) -> str:
    n, cores = common.logical_cpus(), common.physical_cores()
    settings = [
        ("default (intra 0, inter 0 = TensorFlow decides)", 0, 0, {}),
        (f"intra {n}, inter 1", n, 1, {}),
        (f"intra {n}, inter 2", n, 2, {}),
        ("intra 1, inter 1", 1, 1, {}),
        (f"intra {2 * n}, inter 1 (oversubscribed)", 2 * n, 1, {}),
        ("oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)", 0, 0, {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    ]
    if cores and cores < n:  # SMT: one thread per physical core
        settings.insert(3, (f"intra {cores} (physical cores), inter 1", cores, 1, {}))
    results = {name: [] for name, *_ in settings}
    dtypes = set()
    for _ in range(2):  # two rounds, alternating, on a shared machine
        for name, intra, inter, env in settings:
            r = common.run_child(
                [ME, "--child", "threads", "--size", str(args.size), "--intra", str(intra), "--inter", str(inter)],
                env=env,
                log=log,
            )
            results[name] += r.get("times", [])
            dtypes.add(r.get("dtype", "?"))
    import numpy as np

    med = {k: float(np.median(v)) if v else float("nan") for k, v in results.items()}
    ref = med[settings[0][0]]
    rows = [[name, med[name], len(results[name]), med[name] / ref] for name in results]
    out = (
        f"threads: one value+gradient at {args.size} px in {'/'.join(sorted(dtypes))}, "
        "a fresh process per setting, two rounds\n"
    )
    return out + common.table(["setting", "median s", "calls", "time vs default"], rows)


# driver -----------------------------------------------------------------------------------------


def scipy_lbfgs(value_and_grad, x0, steps, history, on_step):
    """The engine's previous driver: scipy's L-BFGS-B in float64 without bounds (reference only)."""
    import numpy as np
    import scipy.optimize

    shape = x0.shape
    count = [0]

    def fun(flat):
        x = flat.reshape(shape).astype(np.float32)
        loss, grad = value_and_grad(x)
        return float(loss), np.asarray(grad, dtype=np.float64).ravel()

    def callback(intermediate_result):
        count[0] += 1
        on_step(count[0], float(intermediate_result.fun), intermediate_result.x.reshape(shape))

    scipy.optimize.minimize(
        fun,
        np.asarray(x0, dtype=np.float64).ravel(),
        jac=True,
        method="L-BFGS-B",
        callback=callback,
        options={"maxiter": steps, "maxfun": steps * 2 + 10, "maxcor": history, "ftol": 0.0, "gtol": 0.0},
    )


def child_driver(size: int, steps: int, history: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from nst_keras.optimize import minimize

    content = common.content_at(size)
    problem = common.Problem(content, common.style_image())
    problem.value_and_grad(content)  # trace
    out = {}
    for _round in range(2):
        for name in ("scipy L-BFGS-B float64 (previous)", "float32 L-BFGS (engine)"):
            evals = []
            losses = {}

            def vg(x, evals=evals):
                t = time.perf_counter()
                r = problem.value_and_grad(x)
                evals.append(time.perf_counter() - t)
                return r

            t0 = time.perf_counter()
            excluded = [0.0]

            def on_step_timed(step, loss, x, losses=losses, excluded=excluded):
                t = time.perf_counter()
                if step in (10, 25, steps):
                    losses[step] = problem.loss(np.clip(np.asarray(x, np.float32), 0, 255))[0]
                excluded[0] += time.perf_counter() - t

            if name.startswith("scipy"):
                scipy_lbfgs(vg, content.copy(), steps, history, on_step_timed)
            else:
                minimize(vg, content.copy(), steps, history=history, on_step=on_step_timed)
            wall = time.perf_counter() - t0 - excluded[0]
            entry = out.setdefault(name, {"wall": [], "evals": [], "eval_s": [], "losses": losses})
            entry["wall"].append(wall)
            entry["evals"].append(len(evals))
            entry["eval_s"].append(sum(evals))
            entry["losses"] = losses
    # Host copies around one evaluation at this size (float32 image -> tensor; gradient -> numpy -> float64).
    x64 = content.astype(np.float64).ravel()
    t = time.perf_counter()
    for _ in range(20):
        xt = tf.convert_to_tensor(x64.reshape(content.shape).astype(np.float32)[None])
    to_tensor = (time.perf_counter() - t) / 20
    g = problem.objective.value_and_grad(xt, problem.content_targets, problem.style_targets, problem.tv_reference)[1]
    t = time.perf_counter()
    for _ in range(20):
        np.asarray(g.numpy()[0], dtype=np.float64).ravel()
    to_host = (time.perf_counter() - t) / 20
    return {"runs": out, "to_tensor_s": to_tensor, "to_host_s": to_host, "size": list(content.shape[:2])}


def section_driver(args, log) -> str:
    steps = 40
    res = common.run_child(
        [ME, "--child", "driver", "--size", str(args.size), "--steps", str(steps), "--history", "10"], log=log
    )
    rows = []
    ref = None
    for name, e in res["runs"].items():
        per_iter = [(w - s) / steps for w, s in zip(e["wall"], e["eval_s"])]
        book = min(per_iter)
        wall = min(e["wall"])
        ref = ref or (wall, book)
        losses = e["losses"]
        rows.append(
            [
                name,
                book,
                e["evals"][0],
                losses.get("10"),
                losses.get("25"),
                losses.get(str(steps)),
                wall,
                wall / ref[0],
            ]
        )
    h, w = res["size"]
    out = f"driver: {steps} L-BFGS iterations (history 10) at {w}x{h} from the photo, each driver twice; best of two\n"
    out += common.table(
        [
            "driver",
            "bookkeeping s/iter",
            "evaluations",
            "loss @10",
            "loss @25",
            f"loss @{steps}",
            "wall s",
            "vs previous",
        ],
        rows,
    )
    out += (
        f"\nhost copies per evaluation: image float64 -> float32 tensor {res['to_tensor_s'] * 1000:.1f} ms, "
        f"gradient tensor -> numpy float64 {res['to_host_s'] * 1000:.1f} ms"
    )
    return out


# history / schedule: whole runs -------------------------------------------------------------------


def child_run(size: int, changes: dict, iterations) -> dict:
    content = common.content_at(size)
    config = common.bench_config(**changes)
    res = common.run_pipeline(content, common.style_image(), config, patch_iterations=iterations, curve=False)
    res.pop("output")
    res.pop("calls")
    res.pop("curve", None)
    return res


def _runs_table(args, log, title, variants) -> str:
    results = []
    for label, changes, iterations in variants:
        cmd = [ME, "--child", "run", "--size", str(args.size), "--changes", json.dumps(changes)]
        if iterations:
            cmd += ["--iterations", ",".join(map(str, iterations))]
        results.append((label, common.run_child(cmd, log=log)))
    ref = results[0][1]
    rows = [
        [
            label,
            str(r.get("schedule")),
            r.get("final_loss"),
            r.get("final_loss", float("nan")) / ref["final_loss"],
            r.get("final_parts", {}).get("style"),
            r.get("final_parts", {}).get("content"),
            r.get("eval_units"),
            r.get("evaluations"),
            r.get("total_s"),
            r.get("total_s", float("nan")) / ref["total_s"],
            r.get("peak_rss_gib"),
        ]
        for label, r in results
    ]
    headers = [
        "variant",
        "schedule [h, w, steps]",
        "final loss",
        "loss vs default",
        "style part",
        "content part",
        "work",
        "evals",
        "wall s",
        "time vs default",
        "peak GiB",
    ]
    return (
        f"{title}\n"
        + common.table(headers, rows)
        + ("\nwork: evaluations in full-size equivalents (weighted by pixels); loss: the full-size objective")
    )


def section_history(args, log) -> str:
    variants = [("history 10 (default)", {}, None)] + [
        (f"history {m}", {"lbfgs_history": m}, None) for m in (5, 20, 50)
    ]
    return _runs_table(args, log, f"history: the whole default run at {args.size} px, L-BFGS memory", variants)


def section_schedule(args, log) -> str:
    from nst_keras.config import PRESET_ITERATIONS

    first, last = PRESET_ITERATIONS["normal"]
    variants = [
        (f"256->512, {first}/{last} (default)", {}, None),
        ("256->512, 250/25", {}, (250, 25)),
        ("256->512, 75/70", {}, (75, 70)),
        ("512 only, 88", {"min_size": 512}, (88, 88)),
        ("128->256->512, 200/100/50", {"min_size": 128}, (200, 50)),
    ]
    return _runs_table(args, log, f"schedule: iterations per scale at about equal work, {args.size} px", variants)


# main -------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=4, help=argparse.SUPPRESS)
    parser.add_argument("--intra", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--inter", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=4, help=argparse.SUPPRESS)
    parser.add_argument("--history", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--changes", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--iterations", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "graph":
        common.emit(child_graph(args.size, args.rounds))
        return 0
    if args.child == "threads":
        common.emit(child_threads(args.size, args.intra, args.inter, args.steps))
        return 0
    if args.child == "driver":
        common.emit(child_driver(args.size, args.steps, args.history))
        return 0
    if args.child == "run":
        its = tuple(int(v) for v in args.iterations.split(",")) if args.iterations else None
        common.emit(child_run(args.size, json.loads(args.changes), its))
        return 0

    common.OUT.mkdir(parents=True, exist_ok=True)
    log = open(common.OUT / "bench_knobs.stderr.log", "a")
    print(common.machine_line())
    print(f"load average at start: {os.getloadavg()}", flush=True)
    for name in args.only.split(","):
        t = time.perf_counter()
        text = globals()[f"section_{name}"](args, log)
        print()
        print(text)
        print(f"[{name}: {time.perf_counter() - t:.0f} s, load average {os.getloadavg()}]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
