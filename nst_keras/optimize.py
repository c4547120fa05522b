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
import scipy.optimize


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
    shape = x0.shape
    best = _Best()
    step = 0

    def fun(flat):
        if should_stop is not None and should_stop():
            raise StopRequested(best.x)
        x = flat.reshape(shape).astype(np.float32)
        loss, grad = value_and_grad(x)
        best.offer(loss, x)
        return float(loss), np.asarray(grad, dtype=np.float64).ravel()

    def callback(intermediate_result):
        nonlocal step
        step += 1
        if on_step is not None:
            on_step(step, float(intermediate_result.fun), intermediate_result.x.reshape(shape))

    # No pixel bounds (they make scipy's L-BFGS-B several times slower per step); the result
    # is clipped to 0..255 by the caller. ftol/gtol 0: run the requested number of steps.
    scipy.optimize.minimize(
        fun,
        np.asarray(x0, dtype=np.float64).ravel(),
        jac=True,
        method="L-BFGS-B",
        callback=callback,
        options={"maxiter": steps, "maxfun": steps * 2 + 10, "maxcor": history, "ftol": 0.0, "gtol": 0.0},
    )
    # Report steps scipy skipped (it ends early when the line search cannot improve).
    while step < steps and on_step is not None and best.x is not None:
        step += 1
        on_step(step, best.loss, best.x)
    if best.x is None:
        best.x = np.asarray(x0, dtype=np.float32)
    return best.x, best.loss


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
