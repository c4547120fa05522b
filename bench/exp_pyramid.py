"""Experiment (not yet in the engine): Adam at 512 px on the pixels vs on a pyramid of them.

The image is content + sum over k < LEVELS of upsample(p_k), p_k of size (H/2^k, W/2^k);
Adam (cosine learning rate LR0 -> LR1, beta_1 B1, epsilon 0.1 on the loss x 1e6, like the
yardstick) updates every p_k, and after each step the finest level absorbs the clip to 0..1.
LEVELS=1 is plain pixels. Prints one JSON line: the loss after n steps as (step, loss, seconds)
and the final loss. Same network and loss as bench_speed.py's yardstick, so the losses compare
with its trajectory.

    python bench/exp_pyramid.py LEVELS LR0 LR1 STEPS [B1]
    python bench/exp_pyramid.py 4 0.05 0.005 150 0.9
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

REPORT_AT = (10, 25, 50, 75, 100, 150, 200, 300)


def run(levels: int, lr0: float, lr1: float, steps: int, beta_1: float = 0.9) -> dict:
    import numpy as np
    import tensorflow as tf

    from nst_keras import losses

    content = common.content_at(512)
    height, width = content.shape[:2]
    problem = common.Problem(content, common.style_image())
    objective = problem.objective
    base = tf.constant(content[None] / 255.0, tf.float32)
    shapes = [(-(-height // 2**k), -(-width // 2**k)) for k in range(levels)]
    params = [tf.Variable(tf.zeros((1, h, w, 3))) for h, w in shapes]
    first = [tf.Variable(tf.zeros_like(v)) for v in params]
    second = [tf.Variable(tf.zeros_like(v)) for v in params]

    def compose():
        x = base
        for k, v in enumerate(params):
            x = x + (v if k == 0 else tf.image.resize(v, (height, width), "bilinear"))
        return x

    @tf.function
    def step(lr, t):
        with tf.GradientTape() as tape:
            x = compose() * 255.0
            feats = objective.extractor(x)
            loss, _ = losses.total_loss(
                x, feats, problem.content_targets, problem.style_targets, objective.weights, problem.tv_reference
            )
        grads = tape.gradient(loss, params)
        for v, g, m, s in zip(params, grads, first, second):
            g = g * 1e6
            m.assign(beta_1 * m + (1 - beta_1) * g)
            s.assign(0.999 * s + 0.001 * g * g)
            m_hat = m / (1 - beta_1**t)
            s_hat = s / (1 - 0.999**t)
            v.assign_sub(lr * m_hat / (tf.sqrt(s_hat) + 0.1))
        x = compose()  # keep the image in 0..1: the finest level absorbs the clip
        params[0].assign_add(tf.clip_by_value(x, 0.0, 1.0) - x)
        return loss

    t0 = time.perf_counter()
    curve = []
    for i in range(steps):
        lr = lr1 + 0.5 * (lr0 - lr1) * (1 + np.cos(np.pi * i / steps))
        value = float(step(tf.constant(lr, tf.float32), tf.constant(i + 1, tf.float32)))
        if (i + 1) in REPORT_AT or i + 1 == steps:
            curve.append((i + 1, round(value, 3), round(time.perf_counter() - t0, 1)))
    final, parts = problem.loss(np.clip(compose().numpy()[0], 0, 1) * 255)
    return {
        "levels": levels,
        "lr": [lr0, lr1],
        "beta_1": beta_1,
        "steps": steps,
        "curve": curve,
        "final": round(final, 3),
        "parts": {k: round(v, 3) for k, v in parts.items()},
    }


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (4, 5):
        print(__doc__)
        return 2
    levels, lr0, lr1, steps = int(args[0]), float(args[1]), float(args[2]), int(args[3])
    beta_1 = float(args[4]) if len(args) == 5 else 0.9
    print(json.dumps(run(levels, lr0, lr1, steps, beta_1)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
