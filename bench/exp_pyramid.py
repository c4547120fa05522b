"""Experiment (not yet in the engine): Adam at 512 px on the pixels vs on a pyramid of them.

The image is content + sum over k < LEVELS of upsample(p_k), p_k of size (H/2^k, W/2^k);
Keras's Adam (cosine learning rate LR0 -> LR1, beta_1 B1, and the yardstick's epsilon and
loss scale) updates every p_k, and after each step the finest level absorbs the clip to 0..1.
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

import baseline_tutorial  # noqa: E402
import common  # noqa: E402

REPORT_AT = (10, 25, 50, 75, 100, 150, 200, 300)


def run(levels: int, lr0: float, lr1: float, steps: int, beta_1: float = 0.9) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    content = common.content_at(512)
    height, width = content.shape[:2]
    problem = common.Problem(content, common.style_image())
    targets = (problem.content_targets, problem.style_targets, problem.tv_reference)
    base = tf.constant(content[None] / 255.0, tf.float32)
    shapes = [(-(-height // 2**k), -(-width // 2**k)) for k in range(levels)]
    params = [tf.Variable(tf.zeros((1, h, w, 3))) for h, w in shapes]
    schedule = keras.optimizers.schedules.CosineDecay(lr0, decay_steps=steps, alpha=lr1 / lr0)
    optimizer = keras.optimizers.Adam(learning_rate=schedule, beta_1=beta_1, epsilon=baseline_tutorial.EPSILON)
    scale = tf.constant(255.0 * baseline_tutorial.LOSS_SCALE, tf.float32)

    def compose():
        x = base
        for k, v in enumerate(params):
            x = x + (v if k == 0 else tf.image.resize(v, (height, width), "bilinear"))
        return x

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            x = compose()
        # the engine's compiled value and gradient for the image, carried back to the levels
        loss, grad, _ = problem.objective._value_and_grad(x * 255.0, *targets)
        optimizer.apply(tape.gradient(x, params, output_gradients=grad * scale), params)
        x = compose()  # keep the image in 0..1: the finest level absorbs the clip
        params[0].assign_add(tf.clip_by_value(x, 0.0, 1.0) - x)
        return loss

    t0 = time.perf_counter()
    curve = []
    for i in range(1, steps + 1):
        value = float(step())
        if i in REPORT_AT or i == steps:
            curve.append((i, round(value, 3), round(time.perf_counter() - t0, 1)))
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
