"""The plan search: scale by scale, whether a scale fits the memory budget in one piece, else which tiles.

`make_plan` decides, scale by scale, whether the scale fits the memory budget in one piece; if
not it chooses the cheapest tile grid that does (tiling.choose_grid). When even small tiles do
not fit, the plan says so, with the largest output size that does. `plan_run` is the engine's
entry: it switches TensorFlow's CPU memory to lean mode first when the run comes near its budget,
and uses (or takes) this machine's calibration.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

from .. import tiling
from ..config import StyleConfig
from ..schedule import MIN_SIDE, plan_scales, style_size
from . import calibration
from .allocator import LEAN_WHEN, POOLED_GROWTH, allocator_mode, use_lean_memory
from .cost import CostModel, default_time, run_time_scale
from .memory import GIB, default_budget

GRAM_COPY_BPP = 256.0  # Gram matrices in windows: one layer's features copied out (block1: 64 floats a pixel)
PLAN_SHARE = 0.92  # plan to this share of the budget: headroom for the memory model's error
MIN_TILE_SIDE = 256  # automatic tiles are at least this big: smaller ones see too little of the picture


@dataclass
class ScalePlan:
    height: int
    width: int
    iterations: int
    grid: Optional[tiling.TileGrid] = None  # None: the scale is optimised in one piece
    steps_per_visit: int = 0
    gram_window_pixels: Optional[int] = None  # None: style Gram matrices in one piece
    phases: list = field(default_factory=list)  # predicted seconds of each optimiser run (scale or tile)
    peak_bytes: float = 0.0
    host_bytes: float = 0.0

    @property
    def tiled(self) -> bool:
        return self.grid is not None

    @property
    def seconds(self) -> float:
        return float(sum(self.phases))

    def to_dict(self) -> dict:
        out = {
            "height": int(self.height),
            "width": int(self.width),
            "iterations": int(self.iterations),
            "tiled": self.tiled,
            "tile_size": None,
            "passes": 1,
            "est_seconds": round(self.seconds, 1),
            "est_peak_bytes": int(self.peak_bytes),
        }
        if self.grid is not None:
            out.update(self.grid.to_dict())
            out["tile_size"] = out.pop("tile")
            out["steps_per_tile"] = int(self.steps_per_visit)
        return out


@dataclass
class Plan:
    size: tuple
    scales: list
    budget_bytes: int
    budget_source: str
    kind: str
    time_source: str
    setup_seconds: float
    fits: bool = True
    largest_fitting_size: Optional[tuple] = None  # (h, w)
    largest_fitting_max_size: Optional[int] = None  # the --max-size that gives it
    needed_bytes: Optional[float] = None
    message: Optional[str] = None
    memory_mode: str = "lean"
    time_correction: float = 1.0  # what finished runs taught the time model (cost.run_time_scale)

    @property
    def seconds(self) -> float:
        return self.setup_seconds + sum(s.seconds for s in self.scales)

    @property
    def peak_bytes(self) -> float:
        return max((s.peak_bytes for s in self.scales), default=0.0)

    def to_dict(self) -> dict:
        out = {
            "size": [int(v) for v in self.size],
            "fits": bool(self.fits),
            "est_seconds": round(self.seconds, 1),
            "est_peak_bytes": int(self.peak_bytes),
            "memory_budget_bytes": int(self.budget_bytes),
            "memory_budget": self.budget_source,
            "memory_kind": "GPU memory" if self.kind == "GPU" else "RAM (peak resident set)",
            "time_model": self.time_source,
            "time_correction": round(self.time_correction, 3),
            "memory_mode": self.memory_mode,
            "tiled": any(s.tiled for s in self.scales),
            "scales": [s.to_dict() for s in self.scales],
            "largest_fitting_size": None
            if self.largest_fitting_size is None
            else [int(v) for v in self.largest_fitting_size],
        }
        if self.largest_fitting_max_size is not None:
            out["largest_fitting_max_size"] = int(self.largest_fitting_max_size)
        if self.kind == "GPU":
            out["est_host_peak_bytes"] = int(max((s.host_bytes for s in self.scales), default=0.0))
        if self.message:
            out["message"] = self.message
        return out


def wants_lean(plan: Plan) -> bool:
    """Whether a CPU run comes near enough to its budget to need the lean allocator."""
    if plan.kind != "CPU":
        return False
    tiled = any(s.tiled or s.gram_window_pixels for s in plan.scales)
    return tiled or plan.peak_bytes > LEAN_WHEN * PLAN_SHARE * plan.budget_bytes


def passes_for(iterations: int) -> int:
    """Sweeps over the tile grid at a tiled scale: two (the second grid shifted), one for a single step."""
    return 2 if iterations >= 2 else 1


def make_plan(
    content_hw: tuple,
    config: StyleConfig,
    schedule: list,
    *,
    style_shapes: Optional[list] = None,
    time_coefficients: Optional[dict] = None,
    kind: Optional[str] = None,
    dtype: Optional[str] = None,
    budget: Optional[tuple] = None,
    memory: Optional[str] = None,
    find_largest: bool = True,
) -> Plan:
    """Plan the run of `schedule` [(h, w, iterations)] for content of `content_hw` (h, w).

    `memory` is the CPU allocator's mode ('lean' or 'pooled'; default: this process's).
    """
    from .. import device

    if kind is None:
        kind = device.device_info()["kind"]
    if dtype is None:
        dtype = device.compute_dtype(config.precision)
    coefficients = time_coefficients or {**default_time(config), "source": "default"}
    if memory is None:
        memory = allocator_mode() if kind == "CPU" else "lean"
    if budget is None:
        if config.memory_limit is not None:
            budget = (int(config.memory_limit * GIB), "--memory-limit")
        else:
            budget = default_budget(kind)
    host_budget = default_budget("CPU")[0] if kind == "GPU" else budget[0]
    model = CostModel.for_config(config, kind, dtype, coefficients, memory)
    plan = _plan_with(content_hw, config, schedule, model, budget, host_budget, style_shapes)
    if kind == "CPU" and memory == "pooled" and wants_lean(plan):
        # A pool near its budget may outgrow it: plan as if the network needed twice its live memory.
        model = CostModel.for_config(config, kind, dtype, coefficients, memory, POOLED_GROWTH)
        plan = _plan_with(content_hw, config, schedule, model, budget, host_budget, style_shapes)
    plan.memory_mode = memory if kind == "CPU" else "gpu"
    plan.time_source = str(coefficients.get("source", "default"))
    plan.time_correction = run_time_scale(coefficients)
    if not plan.fits and find_largest:
        found = _largest_fitting(content_hw, config, model, budget, host_budget, style_shapes)
        if found is not None:
            plan.largest_fitting_size, plan.largest_fitting_max_size = found[:2], found[2]
        plan.message = _no_fit_message(plan, config)
    return plan


def _plan_with(
    content_hw, config, schedule, model, budget, host_budget, style_shapes, input_size_follows=False
) -> Plan:
    th, tw = schedule[-1][:2]
    target_px = th * tw
    input_px = content_hw[0] * content_hw[1]
    if input_size_follows:  # the caller would load the content at the output size (the CLI's --max-size)
        input_px = min(input_px, target_px)
    usable = PLAN_SHARE * budget[0]  # headroom for the model's error
    lbfgs_overhead_px = (model.extra_evals * model.time["eval_a"] + model.time["fwd_a"]) / max(
        model.time["eval_b"], 1e-12
    )
    plan = Plan(
        size=(th, tw),
        scales=[],
        budget_bytes=budget[0],
        budget_source=budget[1],
        kind=model.kind,
        time_source="default",
        setup_seconds=model.time["setup_s"],
    )
    needed = 0.0
    for index, (h, w, n) in enumerate(schedule):
        sp = ScalePlan(h, w, n)
        px = h * w
        held = model.held_bytes(px, input_px)  # images at this scale (the last one: the output's size)
        room = usable - held  # for the network's working memory
        forced = config.tile_size is not None and max(h, w) > config.tile_size
        max_piece = room / model.piece_bytes(1.0) if room > 0 else 0.0
        if forced or px > max_piece:
            passes = passes_for(n)
            min_side = min(MIN_TILE_SIDE, config.tile_size // 2) if forced else MIN_TILE_SIDE
            limit = max_piece if not forced else min(max_piece, float(config.tile_size) ** 2)
            grid = tiling.choose_grid(
                h,
                w,
                limit,
                max_side=config.tile_size,
                passes=passes,
                min_side=min_side,
                overhead_pixels=lbfgs_overhead_px,
            )
            if grid is None:  # does not fit: report what the smallest tiles would need
                plan.fits = False
                smallest = min(MIN_TILE_SIDE, h) * min(MIN_TILE_SIDE, w)
                needed = max(needed, held + model.piece_bytes(smallest))
                grid = tiling.choose_grid(h, w, smallest, passes=passes, min_side=min_side)
            if grid is not None and grid.counts != (1, 1):
                sp.grid = grid
                sp.steps_per_visit = math.ceil(n / passes)
        piece_px = sp.grid.tile_h * sp.grid.tile_w if sp.grid else px

        # Style targets: the whole style image at this scale, in windows when it does not fit in one piece.
        shapes = style_shapes or [(h, w)]
        style_fwd = 0.0
        style_piece = 0
        for style_hw in shapes:
            style_h, style_w = style_size(style_hw, (h, w), config.style_scale)
            spx = style_h * style_w
            if spx * model.fwd_bpp <= max(room, 0):
                style_fwd += model.t_fwd(spx)
                style_piece = max(style_piece, spx)
            else:
                window = max(room, 0) / (model.fwd_bpp + GRAM_COPY_BPP)
                sp.gram_window_pixels = int(max(window, (2 * 128 + 2 * tiling.ALIGN) ** 2))
                wins = tiling.gram_windows(style_h, style_w, sp.gram_window_pixels)
                style_fwd += sum(model.t_fwd((b - a) * (d - c)) for _, (a, b, c, d) in wins)
                style_fwd += model.time["shape_s"] * min(len(wins), 4) * 0.5
                style_piece = max(style_piece, max((b - a) * (d - c) for _, (a, b, c, d) in wins))

        scale_setup = model.time["shape_s"] + style_fwd + 2e-7 * px * 3  # a new shape, style targets, resizing
        if sp.grid is None:
            sp.phases = [scale_setup + model.t_run(px, n, first=index == 0)]
        else:
            visit = model.t_run(piece_px, sp.steps_per_visit, first=index == 0) + 2e-7 * piece_px
            sp.phases = [visit] * sp.grid.visits()
            sp.phases[0] += scale_setup
        sp.peak_bytes = held + max(model.piece_bytes(piece_px), model.fwd_bpp * style_piece)
        sp.host_bytes = model.host_bytes(px, input_px, piece_px)
        if model.kind == "GPU":
            if sp.host_bytes > PLAN_SHARE * host_budget:
                plan.fits = False
                needed = max(needed, sp.host_bytes)
        if sp.peak_bytes > usable:
            plan.fits = False
            needed = max(needed, sp.peak_bytes)
        plan.scales.append(sp)
    plan.needed_bytes = needed if not plan.fits else None
    return plan


def _largest_fitting(content_hw, config, model, budget, host_budget, style_shapes) -> Optional[tuple]:
    """The largest output (h, w) with the content's aspect ratio whose plan fits, or None."""
    h, w = content_hw
    lo, hi = MIN_SIDE, max(config.target_size(h, w))
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        trial = dataclasses.replace(config, max_size=mid)
        try:
            schedule = plan_scales(trial, h, w)
        except ValueError:
            lo = mid + 1
            continue
        if _plan_with(content_hw, trial, schedule, model, budget, host_budget, style_shapes, True).fits:
            best, lo = (schedule[-1][0], schedule[-1][1], mid), mid + 1
        else:
            hi = mid - 1
    return None if best is None else best


def _gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


def _no_fit_message(plan: Plan, config: StyleConfig) -> str:
    th, tw = plan.size
    what = "GPU memory" if plan.kind == "GPU" else "memory"
    head = (
        f"the output {tw}x{th} px needs about {_gib(plan.needed_bytes or plan.peak_bytes)} of {what} "
        f"but the memory budget is {_gib(plan.budget_bytes)} ({plan.budget_source}; runs are planned to "
        f"{PLAN_SHARE:.0%} of it)"
    )
    if plan.largest_fitting_size is None:
        return head + "; even the smallest output does not fit: raise --memory-limit"
    h, w = plan.largest_fitting_size
    long_side = plan.largest_fitting_max_size
    return f"{head}; the largest output that fits is {w}x{h} px (use --max-size {long_side} or raise --memory-limit)"


def plan_run(config: StyleConfig, content_hw: tuple, schedule: list, style_shapes=None, measure: bool = False) -> Plan:
    """The plan of a run that is about to start in this process (the engine's entry).

    Switches TensorFlow's CPU memory to lean mode first when the run comes near its budget
    (possible only before any tensor work), then plans with this machine's cached calibration,
    or (with `measure`, when nothing is cached) a fresh one.
    """
    shapes = [tuple(int(v) for v in s[:2]) for s in style_shapes] if style_shapes else None

    def make(coefficients):
        return make_plan(content_hw, config, schedule, style_shapes=shapes, time_coefficients=coefficients)

    coefficients = calibration.calibrate(config, measure=False)  # no tensor work yet: the mode can still change
    the_plan = make(coefficients)
    mode = allocator_mode()
    if wants_lean(the_plan) and use_lean_memory() and mode != "lean":
        coefficients = calibration.calibrate(config, measure=False)  # the lean mode's entry, if cached
        the_plan = make(coefficients)
    if measure and coefficients.get("source") == "default":
        the_plan = make(calibration.calibrate(config, measure=True))
    return the_plan
