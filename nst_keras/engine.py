"""stylize(): the whole run, coarse to fine, as a library call with no printing and no files.

The schedule starts at about config.min_size on the long side, optimises there, upscales
the result and continues at twice the size, up to the target size (the content's own size
capped by config.max_size). Most iterations happen at the small scales, where a step is
cheap; the last scale refines detail. By default (optimizer 'auto') the first scale runs Adam
on a pyramid of corrections (pyramid.py), which builds the style's large structures from the
photo in few steps, and the later scales run L-BFGS, which refines an upscaled result fastest.

Before running, the planner (the planner package) estimates time and peak memory and decides, scale
by scale, whether the scale fits the memory budget in one piece. Scales that do not (or are
larger than config.tile_size) are optimised in overlapping tiles (tiling.py): every tile
uses the style targets of the whole style image at that scale and the whole content's total
variation as reference, so all tiles aim at one style; each tile's content targets are the
content's features over the same window. Several passes with a shifted grid and feathered
blends leave no seam. A style image too large for one forward pass has its Gram matrices
accumulated over windows. A run that cannot fit even in small tiles is refused up front with
the largest size that fits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from . import backend, planner
from .config import StyleConfig
from .network import layer_stride
from .progress import Cancelled, Eta, Progress
from .resize import resize
from .schedule import MAX_STYLE_SIDE, MIN_SIDE, fit_long_side, plan_scales, style_size

if TYPE_CHECKING:  # imported when a run starts (it loads the Keras backend)
    from .gradient import Objective

__all__ = ["MAX_STYLE_SIDE", "MIN_SIDE", "fit_long_side", "plan", "plan_scales", "stylize"]  # with re-exports

WARM_LEARNING_RATE = 0.15  # of the learning rate, for Adam on an already stylized start (beat 0.5 and 1.0)


def as_float_image(image, what: str) -> np.ndarray:
    """Any image array (H, W), (H, W, 1|2|3|4), uint8/uint16/float 0..255 -> float32 (H, W, 3|4) 0..255."""
    arr = np.asarray(image)
    if arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 257.0
    elif arr.dtype == np.bool_ or arr.dtype.kind not in "uif":
        raise ValueError(f"{what}: expected a numeric image array, received dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(
            f"{what}: expected an array of shape (H, W), (H, W, 3) or (H, W, 4), "
            f"received shape {tuple(np.shape(image))}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: the array contains NaN or infinite values")
    if arr.shape[-1] in (1, 2):  # grey (+ alpha) -> RGB (+ alpha)
        arr = np.concatenate([np.repeat(arr[..., :1], 3, axis=-1), arr[..., 1:]], axis=-1)
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"{what} is {w}x{h} pixels; each side must be at least {MIN_SIDE} pixels")
    return np.clip(arr, 0.0, 255.0)


def plan(content_shape, config: Optional[StyleConfig] = None, *, style_shapes=None, measure: bool = True) -> dict:
    """Estimate a run before it starts: time, peak memory, tiles; JSON-friendly (plain numbers and lists).

    `content_shape` is the content array's shape ((H, W) or (H, W, C)); `style_shapes`, when
    known, the style images' (H, W). With `measure`, the time model comes from a short
    measurement on this machine (a few seconds, once: cached in the user's cache folder);
    without it, from the cache or built-in defaults. Keys: size, fits, est_seconds,
    est_peak_bytes, memory_budget_bytes, memory_budget (how the budget was chosen), scales
    (one dict per scale: height, width, iterations, tiled, tile_size, passes, est_seconds,
    est_peak_bytes, and for tiled scales overlap, feather, tiles_per_pass, steps_per_tile),
    largest_fitting_size ([h, w] when the run does not fit, else None), message (when it does not fit).
    """
    config = config or StyleConfig()
    config.validate(num_styles=len(style_shapes) if style_shapes else None)
    backend.select(config.backend)  # before anything imports Keras
    h, w = (int(v) for v in tuple(content_shape)[:2])
    return planner.plan_run(config, (h, w), plan_scales(config, h, w), style_shapes, measure).to_dict()


def stylize(
    content,
    styles,
    config: Optional[StyleConfig] = None,
    *,
    on_progress: Optional[Callable[[Progress], None]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
    init_image=None,
) -> np.ndarray:
    """Paint `content` in the style of `styles` (one array or a list); return float32 (H, W, 3|4) 0..255.

    The result has the target size (the content's size capped by config.max_size) and the
    content's alpha channel when it has one. `init_image` (an array) is the starting point
    when config.init names a file (the library reads no files: the caller loads it).
    With precision 'auto', the first run on a CPU races float32 against bfloat16 (a few seconds,
    cached per CPU and framework version, as the CLI's first run does) and uses the faster.
    Raises ValueError for bad input or settings, nst_keras.weights.WeightsUnavailable when
    the network weights cannot be found, and Cancelled (with the best image so far) when
    should_stop() returns True.
    """
    config = config or StyleConfig()
    if isinstance(styles, np.ndarray) or not isinstance(styles, (list, tuple)):
        styles = [styles]
    if not styles:
        raise ValueError("styles: expected at least one style image, received none")
    config.validate(num_styles=len(styles))
    backend.select(config.backend)  # before anything imports Keras

    content = as_float_image(content, "content image")
    content_rgb, alpha = content[..., :3], (content[..., 3] if content.shape[-1] == 4 else None)
    style_rgbs = [as_float_image(s, f"style image {i + 1}")[..., :3] for i, s in enumerate(styles)]
    init_rgb = None
    if init_image is not None:
        init_rgb = as_float_image(init_image, "init image")[..., :3]
    elif config.init not in ("content", "noise"):
        raise ValueError(f"init: {config.init!r} names an image file; load it and pass it as init_image")
    schedule = plan_scales(config, *content_rgb.shape[:2])
    shapes = [s.shape for s in style_rgbs]
    the_plan = planner.plan_run(config, content_rgb.shape[:2], schedule, shapes)
    if _race_precision(config):  # the first run on this CPU: the plan again, in the precision the race chose
        the_plan = planner.plan_run(config, content_rgb.shape[:2], schedule, shapes)
    if not the_plan.fits:
        raise ValueError(the_plan.message)
    return _run(config, content_rgb, alpha, style_rgbs, init_rgb, the_plan, on_progress, should_stop)


def _race_precision(config: StyleConfig) -> bool:
    """With precision 'auto' on a CPU not raced yet: race float32 against bfloat16 now (a few seconds, once,
    cached) so that a library caller gets the precision the CLI's first run would find; True if that changed it.

    Runs after the first plan, which has decided TensorFlow's CPU memory mode (that must come before any
    tensor work), as the CLI's planning does.
    """
    from . import device

    if config.precision != "auto":
        return False
    before = device.compute_dtype("auto")
    return device.compute_dtype("auto", measure=True) != before


def _run(config, content_rgb, alpha, style_rgbs, init_rgb, the_plan, on_progress, should_stop):
    schedule = [(sp.height, sp.width, sp.iterations) for sp in the_plan.scales]
    target = schedule[-1][:2]
    from . import device
    from .features import cached_extractor
    from .gradient import Objective
    from .optimize import StopRequested
    from .weights import resolve_weights

    network_file = resolve_weights(config.backbone, config.resolved_weights())
    dtype = device.compute_dtype(config.precision)
    planner.note_tensorflow_started()
    layers = tuple(dict.fromkeys(config.content_layers + config.style_layers))
    extractor = cached_extractor(config.backbone, layers, config.pooling, network_file, dtype)
    objective = Objective.from_config(extractor, config)

    # Colour preservation works on the inputs (and, for luminance, again on the output).
    if config.preserve_colors:
        from . import color
    if config.preserve_colors == "luminance":
        style_rgbs = [color.match_luminance(s, content_rgb) for s in style_rgbs]
        work_content = color.to_luminance_rgb(content_rgb)
        init_rgb = color.to_luminance_rgb(init_rgb) if init_rgb is not None else None
    elif config.preserve_colors == "histogram":
        style_rgbs = [color.match_color_histogram(s, content_rgb) for s in style_rgbs]
        work_content = content_rgb
    else:
        work_content = content_rgb
    blend = config.style_blend_weights(len(style_rgbs))
    rng = np.random.default_rng(config.seed)

    def finish(x: np.ndarray, size: tuple) -> np.ndarray:
        """Clip, restore colours and alpha at `size` (h, w)."""
        out = np.clip(resize(x, *size) if x.shape[:2] != tuple(size) else x, 0.0, 255.0)
        if config.preserve_colors == "luminance":
            out = color.combine_luminance(out, resize(content_rgb, *size))
        if alpha is not None:
            out = np.concatenate([out, resize(alpha, *size)[..., None].clip(0.0, 255.0)], axis=-1)
        return out.astype(np.float32, copy=False)

    eta = Eta([sp.phases for sp in the_plan.scales])
    load_before = planner.load_per_core()
    run = RunContext(objective, config, eta, len(schedule), finish, target, on_progress, should_stop)
    x = None
    for index, sp in enumerate(the_plan.scales):
        h, w, steps = sp.height, sp.width, sp.iterations
        content_s = resize(work_content, h, w)
        if x is None:
            if init_rgb is not None:
                x = resize(init_rgb, h, w)
            elif config.init == "noise":
                x = rng.uniform(0.0, 255.0, size=(h, w, 3)).astype(np.float32)
            else:
                x = content_s.copy()
        else:
            x = resize(x, h, w)
            np.clip(x, 0.0, 255.0, out=x)

        window = sp.gram_window_pixels
        grams = [  # one style image resized at a time
            _style_grams(objective, resize(s, *style_size(s.shape[:2], (h, w), config.style_scale)), window)
            for s in style_rgbs
        ]
        style_targets = objective.blend_grams(grams, blend)
        del grams

        if sp.grid is not None:
            tv_ref = _tv_reference(content_s)
            x = _optimize_tiles(run, sp, index, content_s, x, style_targets, tv_ref)
            continue

        content_targets = objective.content_targets(content_s)
        tv_ref = objective.tv_reference(content_s)
        report = run.reporter(index, (h, w), steps, lambda snap, sz=(h, w): finish(snap, sz))
        try:
            x, _ = run.optimize(x, steps, (content_targets, style_targets, tv_ref), report, index, warm=index > 0)
        except StopRequested as stop:
            best = stop.best if stop.best is not None else (x if index > 0 else None)
            raise Cancelled(finish(best, target) if best is not None else None) from None
        x = np.clip(x, 0.0, 255.0)

    del content_s
    out = finish(x, target)
    if the_plan.time_source in ("cache", "measured"):  # a measured time model: teach it what this run took
        planner.learn_from_run(config, eta.total, eta.elapsed(), load_before)
    return out


@dataclass
class RunContext:
    """What every scale and tile of one run shares: the objective, the settings, the clock and the listeners."""

    objective: Objective
    config: StyleConfig
    eta: Eta
    num_scales: int
    finish: Callable  # (image, (h, w)) -> the output image at that size
    target: tuple  # (h, w) of the output
    on_progress: Optional[Callable] = None
    should_stop: Optional[Callable] = None

    def optimize(self, x0: np.ndarray, steps: int, targets: tuple, on_step, scale_index: int, warm: bool = False):
        """The scale's optimiser on one image (a whole scale or one tile); targets = (content, style, tv ref).

        The optimiser is config.optimizer_at(scale_index). `warm`: x0 is already stylized (an
        upscaled coarser scale, or a tile's second pass), so Adam starts at WARM_LEARNING_RATE
        of its rate: a full-size first step would undo part of what the coarser scale built.
        """
        from .optimize import minimize

        content_targets, style_targets, tv_ref = targets
        objective, config = self.objective, self.config
        method, levels, rate = config.optimizer_at(scale_index)

        def value_and_grad(img):
            return objective.numpy_value_and_grad(img, content_targets, style_targets, tv_ref)

        return minimize(
            value_and_grad,
            x0,
            steps,
            method=method,
            history=config.lbfgs_history,
            learning_rate=rate * (WARM_LEARNING_RATE if warm else 1.0),
            pyramid_levels=levels,
            on_step=on_step,
            should_stop=self.should_stop,
        )

    def reporter(self, index: int, size: tuple, steps: int, render: Callable, tile: Optional[tuple] = None):
        """An on_step callback that turns optimiser steps into Progress reports (nothing when no one listens).

        `render(current)` makes the full-size preview image, only when a listener asks for it;
        `tile` is (visit, visits) on tiled scales.
        """
        visit = tile[0] - 1 if tile else 0

        def on_step(step, loss, current):
            if self.on_progress is None:
                return
            elapsed, eta_s = self.eta.at(index, visit, step / steps)
            self.on_progress(
                Progress(
                    scale=index + 1,
                    num_scales=self.num_scales,
                    step=step,
                    num_steps=steps,
                    loss=float(loss),
                    elapsed_s=elapsed,
                    eta_s=eta_s,
                    size=tuple(size),
                    tile=tile,
                    image=lambda snap=current: render(np.asarray(snap, np.float32)),
                )
            )

        return on_step


def _style_grams(objective, style: np.ndarray, window_pixels: Optional[int]) -> dict:
    """The style image's Gram matrices: in one piece, or accumulated over windows when it is too large."""
    if window_pixels is None:
        return objective.style_grams(style)
    from .tiling import gram_windows

    h, w = style.shape[:2]
    sums: dict = {}
    for core, window in gram_windows(h, w, window_pixels):
        (cy0, cy1, cx0, cx1), (wy0, wy1, wx0, wx1) = core, window
        feats = objective.features(style[wy0:wy1, wx0:wx1])
        for name in objective.style_layers:
            s = layer_stride(name)
            core = feats[name][0, (cy0 - wy0) // s : (cy1 - wy0) // s, (cx0 - wx0) // s : (cx1 - wx0) // s]
            f = objective.to_numpy(core).reshape(-1, core.shape[-1])
            sums[name] = sums.get(name, 0.0) + (f.T @ f).astype(np.float64)
            if objective.style_loss == "mean_cov":  # losses.moments(): the mean row above the Gram
                sums[name + "/mean"] = sums.get(name + "/mean", 0.0) + f.sum(axis=0, dtype=np.float64)[None]
            del core, f
        del feats
    out = {}
    for name in objective.style_layers:
        s = layer_stride(name)
        positions = max(1, (h // s) * (w // s))
        stat = sums[name] / positions
        if objective.style_loss == "mean_cov":
            stat = np.concatenate([sums[name + "/mean"] / positions, stat], axis=0)
        out[name] = objective.tensor(stat)
    return out


def _tv_reference(image: np.ndarray):
    """The image's total variation (as losses.total_variation, floored at 1), in row chunks: no full-size copies."""
    from .gradient import Objective

    h, w = image.shape[:2]
    dy = dx = 0.0
    rows = max(1, 2_000_000 // max(1, w * 3))
    for y in range(0, h, rows):
        block = image[y : min(h, y + rows + 1)].astype(np.float64)  # one row more: the step to the next chunk
        dy += float(np.sum(np.square(block[1:] - block[:-1])))
        own = block[: min(rows, h - y)]
        dx += float(np.sum(np.square(own[:, 1:] - own[:, :-1])))
    value = dy / max(1, (h - 1) * w * 3) + dx / max(1, h * (w - 1) * 3)
    return Objective.tensor(max(value, 1.0))


def _optimize_tiles(run: RunContext, sp, index: int, content_s, x, style_targets, tv_ref):
    """One scale in overlapping tiles: `passes` sweeps over a shifting grid, each tile blended back with a feather.

    Every tile uses the same (whole-image) style targets and TV reference; its content targets
    are the content's features over the same window, so border effects match. Each visit runs a
    fresh optimiser for `steps_per_visit` steps from the current image.
    """
    from .optimize import StopRequested
    from .tiling import blend_into

    grid = sp.grid
    h, w = sp.height, sp.width
    cur = np.ascontiguousarray(x, dtype=np.float32)
    visits = grid.visits()
    steps = sp.steps_per_visit
    visit = 0
    for pass_index in range(grid.passes):
        for window in grid.windows(pass_index):
            visit += 1
            y0, y1, x0, x1 = window
            mask = grid.mask(window)
            content_targets = run.objective.content_targets(content_s[y0:y1, x0:x1])

            def composite(tile, _win=window, _mask=mask):
                out = cur.copy()
                blend_into(out, _win, np.clip(np.asarray(tile, np.float32), 0.0, 255.0), _mask)
                return out

            report = run.reporter(
                index, (h, w), steps, lambda snap, _c=composite: run.finish(_c(snap), (h, w)), tile=(visit, visits)
            )
            try:
                tile_x = cur[y0:y1, x0:x1].copy()
                best, _ = run.optimize(
                    tile_x,
                    steps,
                    (content_targets, style_targets, tv_ref),
                    report,
                    index,
                    warm=index > 0 or pass_index > 0,
                )
            except StopRequested as stop:
                if stop.best is not None:
                    blend_into(cur, window, np.clip(stop.best, 0.0, 255.0), mask)
                started = index > 0 or visit > 1 or stop.best is not None
                raise Cancelled(run.finish(cur, run.target) if started else None) from None
            blend_into(cur, window, np.clip(best, 0.0, 255.0), mask)
            del content_targets, best
    return cur
