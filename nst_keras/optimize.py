"""Optimising the pixels of one image (or tile) at one scale: L-BFGS or Adam.

`minimize()` runs a fixed number of steps, reports after each one and checks the stop
request before each evaluation. It returns the best image it saw (lowest loss), so a run
stopped halfway still yields the best result so far.

The optimiser works either on the pixels or on a pyramid of corrections to the start image
(pyramid.py): the same objective, seen in a geometry where coarse structure moves in a few
steps. Callers see images only; the translation happens here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.linalg.blas import saxpy as _saxpy
from scipy.linalg.blas import sdot as _sdot

ADAM_EPSILON = 1e-8  # relative to the gradient's RMS


class StopRequested(Exception):
    """should_stop() said yes; `best` is the best image seen so far (or None)."""

    def __init__(self, best: Optional[np.ndarray]):
        super().__init__("stop requested")
        self.best = best


@dataclass
class _Best:
    loss: float = np.inf
    x: Optional[np.ndarray] = None

    def offer(self, loss: float, x: np.ndarray) -> None:
        if np.isfinite(loss) and loss < self.loss:
            self.loss = loss
            self.x = np.array(x, dtype=np.float32, copy=True)


def minimize(
    value_and_grad: Callable[[np.ndarray], tuple],
    x0: np.ndarray,
    steps: int,
    *,
    method: str = "lbfgs",
    history: int = 10,
    learning_rate: float = 2.0,
    pyramid_levels: int = 1,
    on_step: Optional[Callable[[int, float, np.ndarray], None]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
) -> tuple:
    """Minimise over the image x (H, W, 3), 0..255; return (best x, its loss).

    value_and_grad(x) -> (loss: float, grad: ndarray like x). on_step(step, loss, x) is
    called after each completed step (step counts from 1). Raises StopRequested (with the
    best image). pyramid_levels > 1 optimises a pyramid of that many levels instead of the
    pixels (pyramid.py); 1 works on the pixels directly.
    """
    if method not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer: expected lbfgs or adam, received {method!r}")
    x0 = np.asarray(x0, dtype=np.float32)
    if pyramid_levels > 1 and x0.ndim == 3 and x0.shape[-1] == 3:
        from .pyramid import Pyramid

        pyr = Pyramid(x0, pyramid_levels)
        image, start = pyr.compose, pyr.zeros()

        def objective(flat):
            loss, grad = value_and_grad(pyr.compose(flat))
            return loss, pyr.pull_back(grad)

        project = pyr.absorb_clip
    else:
        shape = x0.shape

        def image(flat):
            return flat.reshape(shape)

        def objective(flat):
            loss, grad = value_and_grad(flat.reshape(shape))
            return loss, np.asarray(grad, dtype=np.float32).reshape(-1)

        def project(flat):
            np.clip(flat, 0.0, 255.0, out=flat)

        start = x0.reshape(-1).copy()

    report = None
    if on_step is not None:

        def report(step, loss, flat):
            on_step(step, loss, image(flat))

    try:
        if method == "lbfgs":
            best, loss = _lbfgs(objective, start, steps, history, report, should_stop)
        else:
            best, loss = _adam(objective, start, steps, learning_rate, project, report, should_stop)
    except StopRequested as stop:
        raise StopRequested(None if stop.best is None else image(stop.best)) from None
    return image(best), loss


def _lbfgs(value_and_grad, x0, steps, history, on_step, should_stop):
    """L-BFGS in float32 (two-loop recursion, backtracking Armijo line search), no pixel bounds.

    Written here instead of calling scipy's L-BFGS-B, which works in float64 with the machinery
    for bounds: at 512 px its bookkeeping cost 0.15-0.5 s per iteration (history 5-50), 10-20%
    of a step on a 2-core CPU, and twice the memory per stored vector. This one costs about
    (4 * history + 10) passes over the pixels per iteration (measured in bench/bench_knobs.py).
    The result is clipped to 0..255 by the caller.
    """
    best = _Best()
    evaluations = 0
    max_evaluations = steps * 2 + 10

    def evaluate(flat):
        nonlocal evaluations
        if should_stop is not None and should_stop():
            raise StopRequested(best.x)
        evaluations += 1
        loss, grad = value_and_grad(flat)
        loss = float(loss)
        best.offer(loss, flat)
        return loss, np.ascontiguousarray(grad, dtype=np.float32).reshape(-1)

    x = np.array(x0, dtype=np.float32, copy=True).reshape(-1)
    loss, grad = evaluate(x)
    pairs = []  # (s, y, 1 / y.s), oldest first
    step = 0
    while step < steps and evaluations < max_evaluations and np.isfinite(loss):
        direction = _two_loop(grad, pairs)
        slope = _dot(grad, direction)
        if not pairs or not slope < 0:
            # No curvature known yet (or a bad one): a small gradient step, at most one grey level
            # per pixel. It is always accepted and gives the first curvature pair, which then
            # scales every later step (so a loss of any size works).
            pairs.clear()
            direction = -grad
            slope = _dot(grad, direction)
            t = 1.0 / max(float(np.max(np.abs(grad))), 1e-30)
        else:
            t = 1.0
        new_x, new_loss, new_grad = None, None, None
        for _ in range(10):
            trial = x + np.float32(t) * direction
            trial_loss, trial_grad = evaluate(trial)
            if np.isfinite(trial_loss) and trial_loss <= loss + 1e-4 * t * slope:
                new_x, new_loss, new_grad = trial, trial_loss, trial_grad
                break
            if evaluations >= max_evaluations:
                break
            # Backtrack to the minimum of the quadratic through loss, slope and the trial.
            curvature = trial_loss - loss - slope * t
            if np.isfinite(trial_loss) and curvature > 0:
                t = min(max(-slope * t * t / (2.0 * curvature), 0.1 * t), 0.5 * t)
            else:
                t *= 0.1
        if new_x is None:
            break  # no decrease along this direction: the best image so far is the answer
        s = new_x - x
        y = new_grad - grad
        sy = _dot(s, y)
        if sy > 1e-10 * _dot(y, y):
            pairs.append((s, y, 1.0 / sy))
            if len(pairs) > history:
                pairs.pop(0)
        x, loss, grad = new_x, new_loss, new_grad
        step += 1
        if on_step is not None:
            on_step(step, loss, x)
    # Report steps that did not happen (no decrease left, or the evaluation budget ran out).
    while step < steps and on_step is not None and best.x is not None:
        step += 1
        on_step(step, best.loss, best.x)
    if best.x is None:
        best.x = np.asarray(x0, dtype=np.float32).reshape(-1)
    return best.x, best.loss


def _dot(a, b) -> float:
    return float(_sdot(a, b)) if a.dtype == np.float32 else float(np.dot(a, b))


def _two_loop(grad, pairs):
    """-H grad, H the L-BFGS inverse-Hessian estimate from the (s, y, rho) pairs (float32, in place)."""
    q = grad.copy()
    if not pairs:
        return -q
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * _dot(s, q)
        alphas.append(a)
        _saxpy(y, q, a=-a)
    s, y, _ = pairs[-1]
    q *= np.float32(_dot(s, y) / _dot(y, y))
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        b = rho * _dot(y, q)
        _saxpy(s, q, a=a - b)
    q *= np.float32(-1.0)
    return q


def _adam(value_and_grad, x0, steps, learning_rate, project, on_step, should_stop, beta1=0.9, beta2=0.999):
    """Adam with a cosine learning rate from `learning_rate` down to a tenth of it over `steps`.

    `project(x)` puts x back into the feasible set after each step (in place). The epsilon is
    relative to the gradient's root mean square, so the step does not depend on the loss's scale.
    """
    x = np.array(x0, dtype=np.float32, copy=True)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    best = _Best()
    for step in range(1, steps + 1):
        if should_stop is not None and should_stop():
            raise StopRequested(best.x)
        loss, grad = value_and_grad(x)
        best.offer(loss, x)
        grad = np.asarray(grad, dtype=np.float32)
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        m_hat = m / (1 - beta1**step)
        v_hat = v / (1 - beta2**step)
        rate = learning_rate * (0.1 + 0.9 * 0.5 * (1.0 + np.cos(np.pi * (step - 1) / max(1, steps))))
        x -= np.float32(rate) * m_hat / (np.sqrt(v_hat) + ADAM_EPSILON * (np.sqrt(np.mean(v_hat)) + 1e-30))
        project(x)
        if on_step is not None:
            on_step(step, float(loss), x)
    loss, _ = value_and_grad(x)
    best.offer(loss, x)
    return best.x, best.loss
