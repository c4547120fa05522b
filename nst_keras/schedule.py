"""The schedule of a run: the output size, the coarse-to-fine scales, the iterations at each, and the size limits.

Pure arithmetic on sizes, with no import of the rest of nst_keras: StyleConfig (config.py),
the engine, the planner and the image loader all take their sizes from here, so one rounding
rule and one set of limits hold everywhere.

The run starts at about `min_size` on the long side and doubles up to the target size (the
content's own size capped by `max_size`); most iterations happen at the small scales, where a
step is cheap, and the last scale refines detail.

Scales beyond LARGE_SIDE (1024 px on the long side, the default output) refine an already
stylized, upscaled image and cost 4x more per step at each doubling, so each doubling beyond
LARGE_SIDE gets fewer steps (large_scale_iterations): a 4000x3000 photo runs 150, 114, 87, 29,
17 steps at 250 .. 4000 px instead of 150, 114, 87, 66, 50 (docs/benchmarks.md, "Large photos").
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # for the type checker only: config.py imports this module
    from .config import StyleConfig

MIN_SIDE = 32  # the network needs at least this many pixels on the short side (five poolings halve it to 1)
MAX_STYLE_SIDE = 4096  # the style image's long side at any scale is capped here (style_scale can ask for more)

# Quality presets: iterations at the first (smallest) scale, and at the last (full) one;
# scales in between are interpolated geometrically. Most of the work happens at low
# resolution, where a step is cheap; the full-size scale refines detail.
PRESET_ITERATIONS = {
    "draft": (60, 20),
    "normal": (150, 50),
    "high": (300, 150),
}


LARGE_SIDE = 1024  # scales with a longer side than this get fewer steps at each doubling (large_scale_iterations)
MIN_LARGE_ITERATIONS = 8  # but at least this many (two tile passes of four steps)


def fit_long_side(height: int, width: int, long_side: float) -> tuple:
    """(h, w) scaled so that the longer side is `long_side` (rounded to the nearest pixel), each side at least 1.

    The one rounding rule for every resized size in nst-keras: the output, each scale, the
    style image at a scale, and an image reduced while it is loaded.
    """
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def target_size(height: int, width: int, max_size: int) -> tuple:
    """The output size for content of `height` x `width`: its own size, capped by `max_size` (0: no cap)."""
    if max_size and max(height, width) > max_size:
        return fit_long_side(height, width, max_size)
    return height, width


def scale_sizes(height: int, width: int, max_size: int, min_size: int) -> list:
    """The coarse-to-fine sizes [(h, w)]: from about `min_size` on the long side up to the target, doubling."""
    th, tw = target_size(height, width, max_size)
    longest = max(th, tw)
    if longest <= min_size:
        return [(th, tw)]
    count = 1 + math.ceil(math.log2(longest / min_size) - 1e-9)
    return [fit_long_side(th, tw, longest / 2 ** (count - 1 - i)) for i in range(count)]


def iterations_per_scale(num_scales: int, preset: str, iterations: Optional[int] = None) -> list:
    """Iterations at each scale: `iterations` everywhere, or the preset's schedule (geometric from first to last)."""
    if iterations is not None:
        return [iterations] * num_scales
    first, last = PRESET_ITERATIONS[preset]
    if num_scales == 1:
        return [first]
    return [round(first * (last / first) ** (i / (num_scales - 1))) for i in range(num_scales)]


def large_scale_iterations(sizes: list, counts: list, preset: str) -> list:
    """The preset's `counts` for `sizes` [(h, w)], with fewer steps at the scales beyond LARGE_SIDE.

    A scale whose long side is d doublings beyond LARGE_SIDE gets the preset's last count times
    its ratio per doubling, sqrt(last / first) (0.58 for normal: the ratio from 256 to 1024 px),
    to the power d; never below MIN_LARGE_ITERATIONS and never more than the scale had before.
    Scales up to LARGE_SIDE keep their counts. The style at those sizes is the style image
    enlarged, and the coarser scales have already laid out the picture: what is left is detail,
    which the first steps of L-BFGS add (bench/last_scale.py measured it).
    """
    first, last = PRESET_ITERATIONS[preset]
    ratio = math.sqrt(last / first)
    out = []
    for (h, w), before in zip(sizes, counts):
        doublings = math.log2(max(h, w) / LARGE_SIDE)
        if doublings <= 0:
            out.append(before)
        else:
            out.append(min(before, max(MIN_LARGE_ITERATIONS, round(last * ratio**doublings))))
    return out


def plan_scales(config: StyleConfig, height: int, width: int) -> list:
    """[(h, w, iterations)] from coarse to fine; scales too small for the network are dropped.

    Raises ValueError when even the output's short side would be below MIN_SIDE.
    """
    th, tw = target_size(height, width, config.max_size)
    if min(th, tw) < MIN_SIDE:
        raise ValueError(
            f"content image is {width}x{height} pixels: at the output size {tw}x{th} its short side is below "
            f"{MIN_SIDE} pixels (the aspect ratio is too extreme, or --max-size is too small)"
        )
    sizes = scale_sizes(height, width, config.max_size, config.min_size)
    sizes = [s for s in sizes if min(s) >= MIN_SIDE] or [(th, tw)]
    counts = iterations_per_scale(len(sizes), config.preset, config.iterations)
    if config.iterations is None:
        counts = large_scale_iterations(sizes, counts, config.preset)
    return [(h, w, n) for (h, w), n in zip(sizes, counts)]


def style_size(style_hw: tuple, scale_hw: tuple, style_scale: float) -> tuple:
    """The size (h, w) a style image of `style_hw` is resized to for a scale of `scale_hw`.

    Its long side is `style_scale` times the scale's long side, capped at MAX_STYLE_SIDE.
    """
    long_side = min(MAX_STYLE_SIDE, style_scale * max(scale_hw))
    return fit_long_side(style_hw[0], style_hw[1], long_side)
