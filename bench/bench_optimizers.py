"""Loss per step of each optimiser at one size, from the photo, on the engine's objective.

Why this exists: bench_speed.py found that the default pipeline does not reach the
yardstick's loss (1000 steps of the TensorFlow tutorial's Adam), so this script asks the
underlying question directly: per step (one value and gradient each, the same cost), how far
does each optimiser get on the same objective, starting from the same photo, at one scale?

Optimisers:
- the engine's (nst_keras.optimize.minimize), written METHOD[:LEVELS[:LR]]: lbfgs (float32
  L-BFGS, history 10), adam (cosine learning rate LR -> LR/10 over --steps, in grey levels),
  each on the pixels (LEVELS 1, the default) or on a pyramid of LEVELS resolutions
  (nst_keras/pyramid.py); e.g. lbfgs, lbfgs:4, adam:6:12.75;
- scipy: scipy.optimize L-BFGS-B in float64 (history --scipy-history), no bounds;
- tutorial: the yardstick's Adam (lr 0.02 on a 0..1 image, beta_1 0.99, epsilon 0.1, loss
  scaled by 1e6 as in baseline_tutorial.py, clipped to 0..1 each step), written out in numpy.

A chain SPEC/N+SPEC/N... runs one optimiser for N steps, then the next from its (clipped)
result, all at --size; the Ns add up to --steps (e.g. adam:6:3/25+lbfgs/25).

--start SPEC@N starts every optimiser from an upscaled coarse result instead of the photo, as
the engine's coarse-to-fine schedule does: SPEC run for N steps at half the size (each side
rounded up), the result upscaled and clipped. Lines before the table show that start's loss
and its parts (content, style, tv) next to the photo's: what the coarse scale hands over.
--start colour starts from the photo given the style's colour mean and covariance
(nst_keras.color.match_color_histogram, the engine's --preserve-colors histogram transform).

Losses are of the clipped image (0..255), at the listed steps. Run:

    python bench/bench_optimizers.py [--size 256] [--steps 100] [--only lbfgs,scipy,tutorial] [--tv-weight W]
    python bench/bench_optimizers.py --size 512 --steps 150 --only tutorial,lbfgs,adam:1:12.75,adam:6:12.75
    python bench/bench_optimizers.py --size 512 --steps 50 --only adam:6:5,adam:6:0.75,lbfgs --start adam:5:5@100
    python bench/bench_optimizers.py --size 512 --steps 50 --only adam:6:3,adam:6:3/25+lbfgs/25 --start colour
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

MARKS = (10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 1000)


def is_engine_spec(spec: str) -> bool:
    """Whether spec names one of the engine's optimisers (METHOD[:LEVELS[:LR]])."""
    return spec.split(":")[0] in ("lbfgs", "adam")


def run_engine(problem, x0, steps, report, spec):
    """The engine's optimiser, spec METHOD[:LEVELS[:LR]]."""
    from nst_keras.config import StyleConfig
    from nst_keras.optimize import minimize

    parts = spec.split(":")
    method = parts[0]
    levels = int(parts[1]) if len(parts) > 1 else 1
    rate = float(parts[2]) if len(parts) > 2 else StyleConfig(pyramid_levels=levels).optimizer_at(0).learning_rate
    minimize(
        problem.value_and_grad,
        x0.copy(),
        steps,
        method=method,
        pyramid_levels=levels,
        learning_rate=rate,
        on_step=lambda step, loss, x: report(step, x),
    )


def run_scipy(problem, x0, steps, report, history):
    import numpy as np
    import scipy.optimize

    shape = x0.shape
    count = {"it": 0}

    def fun(flat):
        loss, grad = problem.value_and_grad(flat.reshape(shape).astype(np.float32))
        return loss, grad.astype(np.float64).ravel()

    def callback(xk):
        count["it"] += 1
        report(count["it"], xk.reshape(shape).astype(np.float32))

    options = {"maxiter": steps, "maxcor": history, "maxfun": 10 * steps, "ftol": 0.0, "gtol": 0.0}
    scipy.optimize.minimize(
        fun, x0.astype(np.float64).ravel(), jac=True, method="L-BFGS-B", callback=callback, options=options
    )


def run_tutorial(problem, x0, steps, report, loss_scale=1e6):
    import numpy as np

    x = x0 / 255.0
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for step in range(1, steps + 1):
        _, grad = problem.value_and_grad(x * 255.0)
        grad = grad * 255.0 * loss_scale  # d(scaled loss)/d(0..1 pixel)
        m = 0.99 * m + 0.01 * grad
        v = 0.999 * v + 0.001 * grad * grad
        m_hat = m / (1 - 0.99**step)
        v_hat = v / (1 - 0.999**step)
        x = np.clip(x - 0.02 * m_hat / (np.sqrt(v_hat) + 0.1), 0.0, 1.0)
        report(step, x * 255.0)


def run_chain(problem, x0, steps, report, chain):
    """SPEC/N+SPEC/N...: each part from the clipped result of the one before; steps counted across parts."""
    import numpy as np

    parts = [part.rpartition("/") for part in chain.split("+")]
    if any(not n.isdigit() or not is_engine_spec(spec) for spec, _, n in parts):
        raise SystemExit(f"chain: expected SPEC/N+SPEC/N..., received {chain!r}")
    total = sum(int(n) for _, _, n in parts)
    if total != steps:
        raise SystemExit(f"chain {chain!r}: its steps add up to {total}, not --steps {steps}")
    x, done = x0, 0
    for spec, _, n in parts:
        last = {}

        def on(step, image, _done=done, _last=last):
            _last["x"] = image
            report(_done + step, image)

        run_engine(problem, x, int(n), on, spec)
        x, done = np.clip(last["x"], 0.0, 255.0), done + int(n)


def colour_start(problem, content):
    """(the photo with the style's colour mean and covariance, label, seconds)."""
    import numpy as np

    from nst_keras.color import match_color_histogram

    t = time.perf_counter()
    start = np.clip(match_color_histogram(content, common.style_image())[..., :3], 0.0, 255.0).astype(np.float32)
    loss, parts = problem.loss(start)
    print(f"colour-matched photo: loss {loss:.3f} {_parts(parts)}; the photo: {problem.loss(content)[0]:.3f}")
    return start, "colour", time.perf_counter() - t


def coarse_start(problem, content, spec_steps, config):
    """(start image, size of the coarse run 'WxH', its seconds): SPEC@N at half size from the photo, upscaled."""
    import numpy as np

    from nst_keras.resize import resize

    spec, _, n = spec_steps.partition("@")
    if not n.isdigit() or not is_engine_spec(spec):
        raise SystemExit(f"--start: expected SPEC@N with SPEC lbfgs[:L] or adam[:L[:LR]], received {spec_steps!r}")
    h, w = content.shape[:2]
    small = resize(content, -(-h // 2), -(-w // 2))
    coarse = common.Problem(small, common.style_image(), config=config, extractor=problem.extractor)
    result = {}

    def keep(step, x):
        result["x"] = x

    t = time.perf_counter()
    run_engine(coarse, small, int(n), keep, spec)
    x = np.clip(result["x"], 0.0, 255.0)
    own, own_parts = coarse.loss(x)
    start = np.clip(resize(x, h, w), 0.0, 255.0)
    loss, parts = problem.loss(start)
    size = f"{small.shape[1]}x{small.shape[0]}"
    print(f"coarse {spec}@{n} at {size}: loss there {own:.3f} {_parts(own_parts)}")
    print(f"  upscaled to {w}x{h}: loss {loss:.3f} {_parts(parts)}; the photo: {_parts(problem.loss(content)[1])}")
    return start, size, time.perf_counter() - t


def _parts(parts: dict) -> str:
    return "(" + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()) + ")"


def main(argv=None) -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--only", default="lbfgs,scipy,tutorial")
    parser.add_argument("--tv-weight", type=float, default=None, help="change the objective's TV weight")
    parser.add_argument("--scipy-history", type=int, default=10)
    parser.add_argument(
        "--start",
        default=None,
        metavar="SPEC@N|colour",
        help="start from SPEC's result after N steps at half size, or from the colour-matched photo",
    )
    args = parser.parse_args(argv)

    content = common.content_at(args.size)
    config = common.bench_config()
    if args.tv_weight is not None:
        config = dataclasses.replace(config, tv_weight=args.tv_weight)
    problem = common.Problem(content, common.style_image(), config=config)
    print(common.machine_line())
    h, w = content.shape[:2]
    marks = [m for m in MARKS if m <= args.steps]
    rows = []
    start, origin = content, "the photo"
    if args.start == "colour":
        start, _, seconds = colour_start(problem, content)
        origin = "the photo with the style's colour mean and covariance"
        rows.append(["start: colour", seconds] + [None] * len(marks))
    elif args.start:
        start, size, seconds = coarse_start(problem, content, args.start, config)
        origin = f"the photo's {args.start} result at {size}, upscaled"
        rows.append([f"start: {args.start} at {size}", seconds] + [None] * len(marks))
    print(f"{w}x{h} px, one scale, from {origin}; tv weight {config.tv_weight}; loss of the clipped image at step n")
    for name in args.only.split(","):
        losses = {}

        def report(step, x, _losses=losses):
            if step in marks:
                _losses[step] = problem.value_and_grad(np.clip(x, 0.0, 255.0))[0]

        t = time.perf_counter()
        if "+" in name:
            run_chain(problem, start, args.steps, report, name)
        elif is_engine_spec(name):
            run_engine(problem, start, args.steps, report, name)
        elif name == "scipy":
            run_scipy(problem, start, args.steps, report, args.scipy_history)
        elif name == "tutorial":
            run_tutorial(problem, start, args.steps, report)
        else:
            expected = "lbfgs[:L], adam[:L[:LR]], a chain SPEC/N+SPEC/N, scipy or tutorial"
            raise SystemExit(f"unknown optimiser {name!r}: expected {expected}")
        rows.append([name, time.perf_counter() - t] + [losses.get(m) for m in marks])
        print(f"[{name} done]", flush=True)
    print(common.table(["optimiser", "s"] + [f"step {m}" for m in marks], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
