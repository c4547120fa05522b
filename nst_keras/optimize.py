"""Optimising the pixels of one image (or tile) at one scale: L-BFGS or Adam.

`minimize()` runs a fixed number of steps, reports after each one and checks the stop
request before each evaluation. It returns the best image it saw (lowest loss), so a run
stopped halfway still yields the best result so far.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.linalg.blas import saxpy as _saxpy
from scipy.linalg.blas import sdot as _sdot


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
    on_step: Optional[Callable[[int, float, np.ndarray], None]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
) -> tuple:
    """Minimise over the pixels x (any shape); return (best x, its loss).

    value_and_grad(x) -> (loss: float, grad: ndarray like x). on_step(step, loss, x) is
    called after each completed step (step counts from 1). Raises StopRequested.
    """
    if method == "lbfgs":
        return _lbfgs(value_and_grad, x0, steps, history, on_step, should_stop)
    if method == "adam":
        return _adam(value_and_grad, x0, steps, learning_rate, on_step, should_stop)
    raise ValueError(f"optimizer: expected lbfgs or adam, received {method!r}")


def _lbfgs(value_and_grad, x0, steps, history, on_step, should_stop):
    """L-BFGS in float32 (two-loop recursion, backtracking Armijo line search), no pixel bounds.

    Written here instead of calling scipy's L-BFGS-B, which works in float64 with the machinery
    for bounds: at 512 px its bookkeeping cost 0.15-0.5 s per iteration (history 5-50), 10-20%
    of a step on a 2-core CPU, and twice the memory per stored vector. This one costs about
    (4 * history + 10) passes over the pixels per iteration (measured in bench/bench_knobs.py).
    The result is clipped to 0..255 by the caller.
    """
    shape = x0.shape
    best = _Best()
    evaluations = 0
    max_evaluations = steps * 2 + 10

    def evaluate(flat):
        nonlocal evaluations
        if should_stop is not None and should_stop():
            raise StopRequested(best.x)
        evaluations += 1
        x = flat.reshape(shape)
        loss, grad = value_and_grad(x)
        loss = float(loss)
        best.offer(loss, x)
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
            on_step(step, loss, x.reshape(shape))
    # Report steps that did not happen (no decrease left, or the evaluation budget ran out).
    while step < steps and on_step is not None and best.x is not None:
        step += 1
        on_step(step, best.loss, best.x)
    if best.x is None:
        best.x = np.asarray(x0, dtype=np.float32)
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


def _adam(value_and_grad, x0, steps, learning_rate, on_step, should_stop, beta1=0.9, beta2=0.999, eps=1e-8):
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
        # Adam's step is invariant to the loss scale only when eps is tiny next to sqrt(v_hat):
        # relative to the gradient's own size, so a loss of order 1 still moves the pixels.
        x -= learning_rate * m_hat / (np.sqrt(v_hat) + eps * (np.sqrt(np.mean(v_hat)) + 1e-30))
        np.clip(x, 0.0, 255.0, out=x)
        if on_step is not None:
            on_step(step, float(loss), x)
    loss, _ = value_and_grad(x)
    best.offer(loss, x)
    return best.x, best.loss
