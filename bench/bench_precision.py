"""The network's compute precision on this CPU: float32 against mixed bfloat16 and mixed float16.

    nice -n 5 .venv/bin/python bench/bench_precision.py [--backend tensorflow] [--size 512] [--rounds 8]

One value-and-gradient of the engine's default objective (bench/common.py Problem: HED VGG16 weights,
the default StyleConfig, built as the engine builds its last scale), at --size on samples/chelsea.png,
with the network in float32, in Keras's mixed_bfloat16 policy and in its mixed_float16 policy (the
weights stay float32, each layer computes in the half type, the features handed to the losses are
cast to float32: what nst_keras/features.py does for the precisions 'bfloat16' and 'mixed'). On
torch the Keras policy does the casting itself (the same as autocast to bfloat16 on the CPU).
The variants live in one process and run in turn, round after round, so a change in the machine's
load hits them alike; the table gives the median of --rounds after a warm-up, the ratio to float32
and the fraction of the CPU's peak (FLOPs: 2 x the forward pass's, as in bench_backends.py) for
the peak of the unit each precision can use:
- float32: AVX-512 FMA, 2 units x 16 lanes x 2 FLOPs per cycle and core (bench/common.py);
- bfloat16: AMX (TDPBF16PS: a 16x32 by 32x16 bf16 tile product, 8192 multiply-adds, one per 16
  cycles and core = 1024 FLOPs per cycle and core) where the CPU has amx_bf16; else AVX512_BF16
  (VDPBF16PS: 32 multiply-adds per instruction, 2 units = 128 FLOPs per cycle and core);
- float16: AVX512_FP16 (2 units x 32 lanes x 2 = 128 FLOPs per cycle and core), else the fp32 peak
  (no native float16 arithmetic: the half type only saves memory).
Then how much precision each loses: the loss and the gradient of the same image (the photo plus
fixed noise, so that every term of the loss counts) relative to float32's, each precision with its
own targets (content features, style Grams), as the engine computes them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

VARIANTS = (("float32", "float32"), ("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16"))


def peaks(cpu: dict) -> dict:
    """{dtype: (GFLOP/s, how it was derived)} for the units each precision can use (cpu: common.cpu_peak_gflops())."""
    cores, ghz, flags = cpu["cores"], cpu["ghz_used"], cpu["flags"]
    out = {"float32": (cpu["peak_gflops"], f"fp32 {cpu['assumption']}")}
    if "amx_bf16" in flags:
        out["bfloat16"] = (cores * ghz * 1024, f"AMX-BF16 {cores} cores x {ghz:.2f} GHz x 1024 FLOPs/cycle")
    elif "avx512_bf16" in flags:
        out["bfloat16"] = (cores * ghz * 128, f"AVX512_BF16 {cores} cores x {ghz:.2f} GHz x 128 FLOPs/cycle")
    else:
        out["bfloat16"] = (cpu["peak_gflops"], "no bf16 unit: the fp32 peak")
    if "avx512_fp16" in flags:
        out["float16"] = (cores * ghz * 128, f"AVX512_FP16 {cores} cores x {ghz:.2f} GHz x 128 FLOPs/cycle")
    else:
        out["float16"] = (cpu["peak_gflops"], "no fp16 unit: the fp32 peak")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "torch", "jax"))
    parser.add_argument("--size", type=int, default=512, help="long side of the image (px)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls of each variant after the first")
    parser.add_argument("--variants", default=",".join(v for v, _ in VARIANTS))
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.pop("NST_KERAS_BACKEND", None)

    import common
    import numpy as np

    from nst_keras import backend
    from nst_keras.features import FeatureExtractor, deepest_layer

    backend.select(args.backend)
    print(common.machine_line())
    print(f"load average at start: {os.getloadavg()}")
    cfg = common.bench_config()
    layers = tuple(dict.fromkeys(cfg.content_layers + cfg.style_layers))
    content = common.content_at(args.size)
    style = common.style_image()
    h, w = content.shape[:2]
    rng = np.random.default_rng(0)
    x = np.clip(content + rng.normal(0.0, 20.0, content.shape), 0, 255).astype(np.float32)

    wanted = [v for v in VARIANTS if v[0] in args.variants.split(",")]
    problems, results, setup = {}, {}, {}
    for label, dtype in wanted:
        start = time.perf_counter()
        extractor = FeatureExtractor(cfg.backbone, layers, cfg.pooling, cfg.weights, dtype)
        problems[label] = common.Problem(content, style, cfg, extractor)
        results[label] = problems[label].value_and_grad(x)  # the first call traces / compiles
        for _ in range(args.warmup):
            problems[label].value_and_grad(x)
        setup[label] = time.perf_counter() - start
        print(f"{label}: ready in {setup[label]:.1f} s, loss {results[label][0]:.6g}", flush=True)
    times = {label: [] for label in problems}
    for _ in range(args.rounds):
        for label, problem in problems.items():
            start = time.perf_counter()
            problem.value_and_grad(x)
            times[label].append(time.perf_counter() - start)

    cpu = common.cpu_peak_gflops()
    peak = peaks(cpu)
    last = deepest_layer(cfg.backbone, cfg.content_layers + cfg.style_layers)
    flops = 2 * common.conv_flops(cfg.backbone, h, w, last) / 1e9
    medians = {label: float(np.median(t)) for label, t in times.items()}
    reference = medians.get("float32")
    ref_loss, ref_grad = results.get("float32", (None, None))
    print(
        f"\n{backend.name()} {backend.seam().framework_version()}: one value-and-gradient at {w}x{h} "
        f"({flops:.0f} GFLOP), median of {args.rounds} after {args.warmup + 1} warm-up calls, alternating"
    )
    for dtype in dict.fromkeys(d for _, d in wanted):
        print(f"peak for {dtype}: {peak[dtype][1]} = {peak[dtype][0]:.0f} GFLOP/s")
    rows = []
    for label, dtype in wanted:
        loss, grad = results[label]
        row = [label, medians[label] * 1000, min(times[label]) * 1000, max(times[label]) * 1000]
        row.append(medians[label] / reference if reference else None)
        row += [flops / medians[label] / peak[dtype][0], flops / medians[label] / cpu["peak_gflops"]]
        if ref_grad is not None:
            g, g0 = np.asarray(grad, np.float64).ravel(), np.asarray(ref_grad, np.float64).ravel()
            row += [abs(loss - ref_loss) / abs(ref_loss), float(np.linalg.norm(g - g0) / np.linalg.norm(g0))]
            row.append(float(np.dot(g, g0) / (np.linalg.norm(g) * np.linalg.norm(g0))))
        rows.append(row)
    headers = ["policy", "median ms", "min ms", "max ms", "x float32", "of its peak", "of fp32 peak"]
    headers += ["loss rel diff", "grad rel diff", "grad cosine"]
    print(common.table(headers, rows))
    print("rel diff: |a - a_float32| / |a_float32| (the gradient: Euclidean norms over all pixels)")
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
