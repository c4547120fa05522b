"""Progress reports, the time left, and the stop request: what stylize() tells its caller while it runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Progress:
    """One report from the optimisation loop (after each step).

    scale/num_scales and step/num_steps count from 1. `eta_s` is the estimated number of
    seconds left for the whole run (None until it can be estimated). `image()` returns the
    current result as a float32 array (H, W, 3) in 0..255 at the current scale; it costs a
    copy, so call it only when you want a preview.
    """

    scale: int
    num_scales: int
    step: int
    num_steps: int
    loss: float
    elapsed_s: float
    eta_s: Optional[float]
    size: tuple  # (height, width) of the current scale
    tile: Optional[tuple] = None  # (index, count) when the scale is optimised in tiles
    image: Callable[[], Optional[np.ndarray]] = field(default=lambda: None, repr=False, compare=False)


class Cancelled(Exception):
    """Raised by stylize() when should_stop() returned True.

    `image` holds the best result so far at full output size (float32, 0..255, with the
    content's alpha when it had one), or None when no step had finished.
    """

    def __init__(self, image: Optional[np.ndarray] = None):
        super().__init__("stopped on request")
        self.image = image


class Eta:
    """Time left, from the plan's predicted seconds per optimiser run, corrected by the time measured so far.

    `phases` holds, per scale, the predicted seconds of each run (one per scale, or one per tile
    visit). The prediction is scaled by (elapsed + prior) / (predicted done + prior): it starts as
    the planner's estimate and follows this run's measured speed as work gets done.
    """

    def __init__(self, phases: list):
        self.flat = [float(p) for scale in phases for p in scale]
        self.offsets = []
        n = 0
        for scale in phases:
            self.offsets.append(n)
            n += len(scale)
        self.cumulative = [0.0]
        for p in self.flat:
            self.cumulative.append(self.cumulative[-1] + p)
        self.total = self.cumulative[-1]
        self.prior = min(30.0, 0.05 * self.total + 1.0)
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def at(self, scale_index: int, run_index: int, fraction: float) -> tuple:
        """(elapsed seconds, estimated seconds left) when run `run_index` of scale `scale_index` is `fraction` done."""
        i = self.offsets[scale_index] + run_index
        done = self.cumulative[i] + self.flat[i] * min(1.0, max(0.0, fraction))
        elapsed = time.perf_counter() - self.start
        ratio = (elapsed + self.prior) / (done + self.prior)
        return elapsed, max(0.0, (self.total - done) * ratio)
