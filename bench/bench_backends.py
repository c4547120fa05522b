"""The engine on Keras's three backends, on this CPU: one value-and-gradient, and the whole pipeline.

    .venv/bin/python bench/bench_backends.py [--size 512] [--rounds 8] [--pipeline-size 512] [--preset normal]

Keras fixes its backend per process, so each backend runs in its own child process (started once:
imports, weights, first trace). The parent then asks them in turn for one value-and-gradient of the
engine's objective at --size (HED VGG16 weights, the default StyleConfig), round after round
(TensorFlow, torch, JAX, TensorFlow, ...), so a change in the machine's load hits all of them alike;
the table gives the median of --rounds, the ratio to the fastest and the fraction of the CPU's fp32
peak (2 x the forward FLOPs per call: the forward pass and the gradient with respect to the input).
Then each child runs the default pipeline (nst_keras.stylize) at --pipeline-size once, in turn.
--torch-compile adds a child with NST_KERAS_TORCH_COMPILE=1 (torch.compile of the loss).
The fastest backend here is the CPU default of 'auto' (nst_keras/backend/selection.py CPU_PREFERENCE).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

BACKENDS = ("tensorflow", "torch", "jax")


# Child ----------------------------------------------------------------------------------------


def child(size: int, pipeline_size: int, preset: str, label: str) -> None:
    """Serve requests from stdin, one JSON line each: 'step', 'pipeline', 'quit'."""
    import numpy as np

    t0 = time.perf_counter()
    content = common.content_at(size)
    problem = common.Problem(content, common.style_image())
    x = content.copy()
    problem.value_and_grad(x)  # the first call traces / compiles
    from nst_keras import backend
    from nst_keras.features import deepest_layer

    cfg = problem.config
    h, w = content.shape[:2]
    last = deepest_layer(cfg.backbone, cfg.content_layers + cfg.style_layers)
    loss0 = problem.value_and_grad(x)[0]
    common.emit(
        {
            "ready": True,
            "backend": backend.name(),
            "version": backend.seam().framework_version(),
            "setup_s": time.perf_counter() - t0,
            "size": [h, w],
            "loss": loss0,
            "forward_gflop": common.conv_flops(cfg.backbone, h, w, last) / 1e9,
        }
    )
    for line in sys.stdin:
        request = line.strip()
        if request == "step":
            start = time.perf_counter()
            problem.value_and_grad(x)
            common.emit({"step_s": time.perf_counter() - start})
        elif request == "pipeline":
            config = common.bench_config(preset=preset, max_size=pipeline_size)
            image = common.content_at(pipeline_size)
            result = common.run_pipeline(image, common.style_image(), config, curve=False)
            out = result.pop("output")
            common.save_png(out, common.OUT / f"backends-{label}-{pipeline_size}.png")
            np.save(common.OUT / f"backends-{label}-{pipeline_size}.npy", out)
            common.emit({k: result[k] for k in ("total_s", "evaluations", "eval_s", "final_loss", "peak_rss_gib")})
        else:
            break


# Parent ---------------------------------------------------------------------------------------


class Child:
    def __init__(self, label: str, env: dict, args: list):
        full_env = {**os.environ, "PYTHONPATH": str(common.ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **env}
        self.label = label
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--child", *args],
            cwd=common.ROOT,
            env=full_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"{self.label}: the child ended (exit {self.proc.wait()})")

    def ask(self, request: str) -> dict:
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(timeout=60)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="long side of the value-and-gradient (px)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--pipeline-size", type=int, default=512, help="long side of the pipeline run; 0: none")
    parser.add_argument("--preset", default="normal")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--torch-compile", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    child_args = ["--size", str(args.size), "--pipeline-size", str(args.pipeline_size), "--preset", args.preset]
    if args.child:
        child(args.size, args.pipeline_size, args.preset, args.label)
        return 0

    print(common.machine_line())
    print(f"load average at start: {os.getloadavg()}")
    variants = [(name, {"KERAS_BACKEND": name}) for name in args.backends.split(",")]
    if args.torch_compile:
        variants.append(("torch.compile", {"KERAS_BACKEND": "torch", "NST_KERAS_TORCH_COMPILE": "1"}))
    children, ready = {}, {}
    for label, env in variants:  # one at a time: their start-ups do not compete
        children[label] = Child(label, env, [*child_args, "--label", label])
        ready[label] = children[label].read()
        print(f"{label}: ready in {ready[label]['setup_s']:.1f} s, loss {ready[label]['loss']:.6g}", flush=True)
    times = {label: [] for label in children}
    for _ in range(args.rounds):
        for label, c in children.items():
            times[label].append(c.ask("step")["step_s"])
    pipelines = {}
    if args.pipeline_size:
        for label, c in children.items():
            pipelines[label] = c.ask("pipeline")
            print(f"{label}: pipeline {pipelines[label]['total_s']:.1f} s", flush=True)
    for c in children.values():
        c.close()

    import numpy as np

    cpu = common.cpu_peak_gflops()
    medians = {label: float(np.median(t)) for label, t in times.items()}
    best = min(medians.values())
    any_ready = next(iter(ready.values()))
    h, w = any_ready["size"]
    flops = 2 * any_ready["forward_gflop"]
    reference = ready[next(iter(ready))]["loss"]
    print(f"\nOne value-and-gradient at {w}x{h} ({flops:.0f} GFLOP), median of {args.rounds}, alternating")
    print(f"CPU peak: {cpu['assumption']} = {cpu['peak_gflops']:.0f} GFLOP/s")
    rows = []
    for label, t in times.items():
        rows.append(
            [
                label,
                ready[label]["version"],
                medians[label] * 1000,
                min(t) * 1000,
                medians[label] / best,
                flops / medians[label] / cpu["peak_gflops"],
                abs(ready[label]["loss"] - reference) / abs(reference),
            ]
        )
    print(common.table(["backend", "version", "median ms", "min ms", "x fastest", "of peak", "loss vs first"], rows))
    if pipelines:
        fastest = min(p["total_s"] for p in pipelines.values())
        print(f"\nThe default pipeline (preset {args.preset}) at {args.pipeline_size} px, once each, in turn")
        rows = [
            [label, p["total_s"], p["total_s"] / fastest, p["evaluations"], p["eval_s"] / p["total_s"]]
            + [p["peak_rss_gib"]]
            for label, p in pipelines.items()
        ]
        print(common.table(["backend", "seconds", "x fastest", "evaluations", "share in evals", "peak GiB"], rows))
        outs = {label: np.load(common.OUT / f"backends-{label}-{args.pipeline_size}.npy") for label in pipelines}
        first = next(iter(outs))
        for label, out in outs.items():
            if label != first and out.shape == outs[first].shape:
                diff = np.abs(out.astype(np.float64) - outs[first])
                mean, top = diff.mean(), diff.max()
                print(f"{label} vs {first}: outputs differ by {mean:.2f} grey levels (mean), {top:.0f} (max)")
    print(f"fastest on this CPU: {min(medians, key=medians.get)}")
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
