"""Progress reports and the stop request: what stylize() tells its caller while it runs."""

from __future__ import annotations

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
    image: Callable[[], np.ndarray] = field(default=lambda: None, repr=False, compare=False)


class Cancelled(Exception):
    """Raised by stylize() when should_stop() returned True.

    `image` holds the best result so far at full output size (float32, 0..255, with the
    content's alpha when it had one), or None when no step had finished.
    """

    def __init__(self, image: Optional[np.ndarray] = None):
        super().__init__("stopped on request")
        self.image = image
