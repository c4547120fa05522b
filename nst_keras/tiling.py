"""Tiles for scales too large to optimise in one piece: the grid, the blend masks, Gram windows.

Pure numpy, no TensorFlow: the engine does the optimisation, this module says where.

A tiled scale is optimised in `passes` sweeps over a grid of equal, overlapping tiles (one
shape per scale, so the network's kernels are set up once). Each tile visit starts from the
current image, so a tile sees its neighbours' latest results in the overlap (block
Gauss-Seidel), and its result is written back with a feathered mask: 0 at the tile's inner
edges (where the convolutions' zero padding distorts the gradient), rising with a raised
cosine to 1 over `feather` pixels, and 1 at the image's own borders. Neighbours overlap by
at least twice the feather width, so every pixel lies where some tile's mask is 1: a pass
replaces every pixel, and the blend is a convex combination everywhere (the weights of the
tiles' results sum to 1).

Between passes the grid moves by a fraction of the stride (half, with two passes): the inner
tiles shift, the tiles at the image's ends stay, so a shifted pass has one more tile per split
axis. A blend shows where a tile's ramp lies over the result of a tile written before it; the
visiting order (see axis_starts) keeps those places apart from one pass to the next, so no seam
stays where it was.

Gram windows (`gram_windows`): a Gram matrix is a sum over positions, so the style targets
of a large image can be accumulated window by window. Cores are aligned to multiples of 16
(the deepest layers' stride), so each core's feature rows and columns line up exactly with
the whole image's; windows add a margin around the core so the core's features do not see
the padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALIGN = 16  # the deepest VGG block's stride: tile sizes and Gram cores are multiples of this
MIN_OVERLAP = 32
MAX_OVERLAP = 128


def round_up(value: float, multiple: int = ALIGN) -> int:
    return int(math.ceil(value / multiple) * multiple)


def overlap_for(tile_side: int) -> int:
    """The minimum overlap between neighbouring tiles: a quarter of the tile, 32..128 px, a multiple of 16."""
    return int(min(MAX_OVERLAP, max(MIN_OVERLAP, ALIGN * round(tile_side / 4 / ALIGN))))


def axis_starts(length: int, tile: int, count: int, shift: float = 0.0) -> list:
    """Starts of tiles of size `tile` covering 0..length, in the order they are visited.

    Unshifted: `count` evenly spaced starts, the first at 0 and the last at length - tile.
    Shifted by a fraction `shift` of the stride: the inner starts move back by that much and
    the two end tiles stay, so count + 1 tiles; the tile at length - tile is visited before
    its left neighbour, so that no edge written last (the one a blend shows) falls where an
    unshifted pass has one.
    """
    if count <= 1 or tile >= length:
        return [0]
    stride = (length - tile) / (count - 1)
    if not shift:
        return [round(i * stride) for i in range(count)]
    inner = [round((i - shift) * stride) for i in range(1, count)]
    return [0, *inner[:-1], length - tile, inner[-1]]


def axis_count(length: int, tile: int, overlap: int) -> int:
    """The fewest tiles of size `tile` that cover `length` with neighbours overlapping by at least `overlap`."""
    if tile >= length:
        return 1
    return 1 + math.ceil((length - tile) / max(1, tile - overlap))


def _tile_side(length: int, count: int, overlap: int) -> int:
    """The smallest tile size (a multiple of 16, at most `length`) with which `count` tiles cover `length`."""
    if count <= 1:
        return length
    return min(length, round_up((length + (count - 1) * overlap) / count))


@dataclass(frozen=True)
class TileGrid:
    """Equal tiles of tile_h x tile_w over a height x width image; `counts` (ny, nx) of the first pass."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    counts: tuple
    overlap: int
    feather: int
    passes: int

    def shift(self, pass_index: int) -> float:
        """How far (a fraction of the stride) a pass's grid is moved: 0, 1/p, 2/p, ..."""
        return pass_index / self.passes

    def windows(self, pass_index: int) -> list:
        """The tiles of a pass as (y0, y1, x0, x1), in the order they are visited."""
        ys = axis_starts(self.height, self.tile_h, self.counts[0], self.shift(pass_index))
        xs = axis_starts(self.width, self.tile_w, self.counts[1], self.shift(pass_index))
        return [(y, y + self.tile_h, x, x + self.tile_w) for y in ys for x in xs]

    def visits(self) -> int:
        """Tile visits over all passes."""
        return sum(len(self.windows(p)) for p in range(self.passes))

    def min_overlap(self) -> int:
        """The smallest overlap between neighbours in any pass (the first pass has the fewest tiles)."""
        found = []
        for length, tile, count in (
            (self.height, self.tile_h, self.counts[0]),
            (self.width, self.tile_w, self.counts[1]),
        ):
            starts = axis_starts(length, tile, count)
            found += [tile - (b - a) for a, b in zip(starts, starts[1:])]
        return min(found) if found else self.tile_h

    def mask(self, window: tuple) -> np.ndarray:
        """The blend weight (tile_h, tile_w, 1) float32 of a tile's result: 0 at inner edges, 1 inside."""
        y0, y1, x0, x1 = window
        wy = edge_profile(y1 - y0, y0 > 0, y1 < self.height, self.feather)
        wx = edge_profile(x1 - x0, x0 > 0, x1 < self.width, self.feather)
        return (wy[:, None] * wx[None, :])[..., None].astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "tile": [int(self.tile_h), int(self.tile_w)],
            "overlap": int(self.min_overlap()),
            "feather": int(self.feather),
            "passes": int(self.passes),
            "tiles_per_pass": [len(self.windows(p)) for p in range(self.passes)],
        }


def edge_profile(length: int, ramp_start: bool, ramp_end: bool, feather: int) -> np.ndarray:
    """1-D weights: a raised-cosine ramp from ~0 to 1 over `feather` samples at the ends that have one."""
    w = np.ones(length, dtype=np.float64)
    f = min(int(feather), length // 2)
    if f > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(f) + 0.5) / f)  # symmetric: ramp[i] + ramp[f-1-i] == 1
        if ramp_start:
            w[:f] = np.minimum(w[:f], ramp)
        if ramp_end:
            w[length - f :] = np.minimum(w[length - f :], ramp[::-1])
    return w


def blend_into(canvas: np.ndarray, window: tuple, result: np.ndarray, mask: np.ndarray) -> None:
    """canvas[window] = mask * result + (1 - mask) * canvas[window], in place."""
    y0, y1, x0, x1 = window
    region = canvas[y0:y1, x0:x1]
    region += mask * (np.asarray(result, dtype=canvas.dtype) - region)


def pass_masks(grid: TileGrid, pass_index: int) -> tuple:
    """How a pass composes the image: (weight of each tile's result summed, weight left to the old image).

    Both are (height, width) arrays; with sequential blends they sum to 1 everywhere, and a
    good grid leaves the old image no weight (every pixel is replaced by the pass).
    """
    kept = np.ones((grid.height, grid.width))  # weight the value written so far still has
    tiles = np.zeros((grid.height, grid.width))
    for window in grid.windows(pass_index):
        y0, y1, x0, x1 = window
        m = grid.mask(window)[..., 0].astype(np.float64)
        tiles[y0:y1, x0:x1] *= 1.0 - m
        kept[y0:y1, x0:x1] *= 1.0 - m
        tiles[y0:y1, x0:x1] += m
    return tiles, kept


def choose_grid(
    height: int,
    width: int,
    max_tile_pixels: float,
    *,
    max_side: int | None = None,
    passes: int = 2,
    min_side: int = 64,
    overhead_pixels: float = 0.0,
) -> TileGrid | None:
    """The cheapest grid of equal tiles within `max_tile_pixels` (and `max_side`), or None if none fits.

    Cost: tile visits over all passes times (tile pixels + overhead_pixels), the fixed cost of a
    visit in pixel equivalents. Tile sides are multiples of 16 (or the image's own side), and
    at least `min_side` (or the image's side when it is smaller).
    """
    cap = max_side or max(height, width)
    overlap = overlap_for(int(min(cap, math.sqrt(max(max_tile_pixels, 1.0)))))
    best, best_cost = None, math.inf
    for ny in range(1, axis_count(height, min_side, overlap) + 1):
        th = _tile_side(height, ny, overlap)
        if th < min(min_side, height):
            break
        if th > cap:
            continue
        nx_first = None
        for nx in range(1, axis_count(width, min_side, overlap) + 1):
            tw = _tile_side(width, nx, overlap)
            if tw < min(min_side, width) or (nx_first is not None and nx > nx_first + 3):
                break
            if tw > cap or th * tw > max_tile_pixels:
                continue
            nx_first = nx if nx_first is None else nx_first
            visits = sum(
                (ny + (p > 0) if th < height else 1) * (nx + (p > 0) if tw < width else 1) for p in range(passes)
            )
            cost = visits * (th * tw + overhead_pixels)
            if cost < best_cost:
                best, best_cost = TileGrid(height, width, th, tw, (ny, nx), overlap, overlap // 2, passes), cost
    return best


def gram_windows(height: int, width: int, max_window_pixels: float, margin: int = 128) -> list:
    """Windows for accumulating Gram matrices piece by piece: [(core, window)], each (y0, y1, x0, x1).

    Cores partition the image, start at multiples of 16 and are as few as fit; windows are the
    cores grown by a margin (at most `margin`, at most a quarter of the window's side, a multiple
    of 16) and clipped to the image.
    """
    side = math.sqrt(max(max_window_pixels, 1.0))
    margin = max(ALIGN, min(round_up(margin), ALIGN * int(side / 4 / ALIGN)))
    count = 1
    while True:
        ny = max(1, round(math.sqrt(count * height / width)))
        nx = max(1, math.ceil(count / ny))
        ys, xs = _cuts(height, ny), _cuts(width, nx)
        win_h = max(min(b + margin, height) - max(a - margin, 0) for a, b in zip(ys, ys[1:]))
        win_w = max(min(b + margin, width) - max(a - margin, 0) for a, b in zip(xs, xs[1:]))
        smallest = min(min(b - a for a, b in zip(ys, ys[1:])), min(b - a for a, b in zip(xs, xs[1:])))
        if win_h * win_w <= max_window_pixels or smallest <= 2 * ALIGN:
            break
        count += 1
    out = []
    for y0, y1 in zip(ys, ys[1:]):
        for x0, x1 in zip(xs, xs[1:]):
            core = (y0, y1, x0, x1)
            window = (max(y0 - margin, 0), min(y1 + margin, height), max(x0 - margin, 0), min(x1 + margin, width))
            out.append((core, window))
    return out


def _cuts(length: int, count: int) -> list:
    """Cut points 0 = c0 < c1 < ... < c_n = length, inner ones multiples of 16."""
    inner = sorted({ALIGN * round(i * length / count / ALIGN) for i in range(1, count)} - {0})
    inner = [c for c in inner if 0 < c < length]
    return [0, *inner, length]
