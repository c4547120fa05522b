"""On a GPU machine: the engine on TensorFlow, PyTorch and JAX at 1024 px and at 4000x3000, in one table.

    .venv/bin/python bench/gpu_check.py [--rounds 5] [--big 4000x3000] [--backends tensorflow,torch,jax]

Each backend runs in its own child process (Keras fixes its backend per process):
- one value-and-gradient of the engine's objective at 1024 px (HED VGG16 weights, the default
  StyleConfig, precision auto: float16 on the GPU), median of --rounds after the first call,
  and the peak GPU memory of a call (the backend's own allocator statistics);
- the whole default pipeline (nst_keras.stylize, preset normal) on the sample photo cropped to
  4:3 and resized to --big (default 4000x3000), its time and the planner's estimate.
It prints a table and writes bench/out/gpu_check.json. Needs the CUDA builds installed in the
environment (tensorflow[and-cuda], torch with CUDA, jax[cuda12]); a backend whose framework does
not see a GPU is reported as such, not measured on the CPU. Nothing here asserts: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

BACKENDS = ("tensorflow", "torch", "jax")


def child(what: str, rounds: int, big: tuple) -> dict:
    import numpy as np

    import nst_keras
    from nst_keras import backend, engine

    seam = backend.seam()
    info = backend.describe()
    out = {"backend": info["backend"], "version": info["framework_version"], "device": info["device"]}
    if info["device_kind"] != "GPU":
        return {**out, "error": "no GPU seen by this framework"}
    if what == "step":
        cfg = common.bench_config()
        content = common.content_at(1024)
        from nst_keras.features import cached_extractor
        from nst_keras.gradient import Objective

        dtype = info["compute_dtype"]
        layers = tuple(dict.fromkeys(cfg.content_layers + cfg.style_layers))
        objective = Objective.from_config(cached_extractor(cfg.backbone, layers, cfg.pooling, cfg.weights, dtype), cfg)
        targets = (objective.content_targets(content), objective.style_grams(content), objective.tv_reference(content))
        x = content[None]
        t0 = time.perf_counter()
        seam.sync(objective.value_and_grad(x, *targets)[1])
        first = time.perf_counter() - t0
        seam.reset_peak_memory()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            seam.sync(objective.value_and_grad(x, *targets)[1])
            times.append(time.perf_counter() - t0)
        return {
            **out,
            "size": list(content.shape[:2]),
            "dtype": dtype,
            "first_s": first,
            "step_s": float(np.median(times)),
            "peak_gpu_gib": seam.peak_memory_bytes() / 2**30,
        }
    w, h = big
    content = common.content_at(max(w, h), aspect=w / h)
    cfg = common.bench_config(max_size=max(w, h))
    estimate = engine.plan(content.shape, cfg, style_shapes=[common.style_image().shape])
    t0 = time.perf_counter()
    result = nst_keras.stylize(content, [common.style_image()], cfg)
    total = time.perf_counter() - t0
    common.save_png(result, common.OUT / f"gpu-check-{info['backend']}-{w}x{h}.png")
    return {
        **out,
        "size": list(result.shape[:2]),
        "pipeline_s": total,
        "estimate_s": estimate["est_seconds"],
        "tiled": estimate["tiled"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--big", default="4000x3000", help="WxH of the pipeline run; 0: skip it")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per child")
    parser.add_argument("--child", choices=("step", "pipeline"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    big = None if args.big == "0" else tuple(int(v) for v in args.big.lower().split("x"))
    if args.child:
        common.emit(child(args.child, args.rounds, big))
        return 0

    print(common.machine_line())
    me = os.path.abspath(__file__)
    results = {}
    for name in args.backends.split(","):
        row = {}
        for what in ("step", "pipeline") if big else ("step",):
            cmd = [me, "--child", what, "--rounds", str(args.rounds), "--big", args.big]
            try:
                found = common.run_child(cmd, timeout=args.timeout, env={"KERAS_BACKEND": name})
            except Exception as error:  # noqa: BLE001 - one backend's failure is a row, not the end
                found = {"error": f"{type(error).__name__}: {error}"}
            if found.get("returncode") not in (0, None) and "error" not in found:
                found["error"] = f"the child exited with {found['returncode']}"
            row.update({k: v for k, v in found.items() if k not in row or k == "error"})
            print(f"{name} {what}: {json.dumps(found)}", flush=True)
        results[name] = row
    rows = [
        [
            name,
            r.get("version", "-"),
            r.get("device", "-"),
            r.get("dtype", "-"),
            r.get("step_s", float("nan")) * 1000,
            r.get("peak_gpu_gib", float("nan")),
            r.get("pipeline_s", float("nan")),
            r.get("estimate_s", float("nan")),
            r.get("error", ""),
        ]
        for name, r in results.items()
    ]
    headers = ["backend", "version", "device", "dtype", "1024 px ms", "peak GiB", f"{args.big} s", "plan s", "error"]
    print(common.table(headers, rows))
    common.OUT.mkdir(parents=True, exist_ok=True)
    (common.OUT / "gpu_check.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
