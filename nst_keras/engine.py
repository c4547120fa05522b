"""stylize(): the whole run, coarse to fine, as a library call with no printing and no files.

The schedule starts at about config.min_size on the long side, optimises there, upscales
the result and continues at twice the size, up to the target size (the content's own size
capped by config.max_size). Most iterations happen at the small scales, where a step is
cheap; the last scale refines detail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Optional

import numpy as np

from .config import StyleConfig
from .progress import Cancelled, Progress
from .resize import fit_long_side, resize

MIN_SIDE = 32  # the network needs at least this many pixels on the short side
MAX_STYLE_SIDE = 4096


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


def plan_scales(config: StyleConfig, height: int, width: int) -> list:
    """[(h, w, iterations)] from coarse to fine; scales too small for the network are dropped."""
    th, tw = config.target_size(height, width)
    if min(th, tw) < MIN_SIDE:
        raise ValueError(
            f"content image is {width}x{height} pixels: at the output size {tw}x{th} its short side is below "
            f"{MIN_SIDE} pixels (the aspect ratio is too extreme, or --max-size is too small)"
        )
    sizes = [s for s in config.scales(height, width) if min(s) >= MIN_SIDE] or [(th, tw)]
    iterations = config.iterations_per_scale(len(sizes))
    return [(h, w, n) for (h, w), n in zip(sizes, iterations)]


class _Clock:
    """ETA from measured step times, with cost proportional to pixels plus a fixed overhead."""

    OVERHEAD_PIXELS = 40_000  # per-step overhead, in pixel-equivalents (measured: ~80 ms at 512 px)

    def __init__(self, schedule: list):
        self.units = [(h * w + self.OVERHEAD_PIXELS) * n for h, w, n in schedule]
        self.per_step = [h * w + self.OVERHEAD_PIXELS for h, w, _ in schedule]
        self.start = time.perf_counter()
        self.rate = None  # seconds per unit
        self.last = self.start

    def step(self, scale_index: int, steps_done: int) -> tuple:
        now = time.perf_counter()
        dt, self.last = now - self.last, now
        measured = dt / self.per_step[scale_index]
        self.rate = measured if self.rate is None else 0.7 * self.rate + 0.3 * measured
        steps_here = self.units[scale_index] // self.per_step[scale_index]
        remaining = self.per_step[scale_index] * max(0, steps_here - steps_done) + sum(self.units[scale_index + 1 :])
        return now - self.start, self.rate * remaining

    def mark(self) -> None:
        """Restart the step timer (after target computation, which is not a step)."""
        self.last = time.perf_counter()


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

    content = as_float_image(content, "content image")
    content_rgb, alpha = content[..., :3], (content[..., 3] if content.shape[-1] == 4 else None)
    style_rgbs = [as_float_image(s, f"style image {i + 1}")[..., :3] for i, s in enumerate(styles)]
    init_rgb = None
    if init_image is not None:
        init_rgb = as_float_image(init_image, "init image")[..., :3]
    elif config.init not in ("content", "noise"):
        raise ValueError(f"init: {config.init!r} names an image file; load it and pass it as init_image")
    schedule = plan_scales(config, *content_rgb.shape[:2])
    return _run(config, content_rgb, alpha, style_rgbs, init_rgb, schedule, on_progress, should_stop)


def _run(config, content_rgb, alpha, style_rgbs, init_rgb, schedule, on_progress, should_stop):
    target = schedule[-1][:2]
    from . import device
    from .features import cached_extractor
    from .gradient import Objective
    from .optimize import StopRequested, minimize
    from .weights import resolve_weights

    weights_path = resolve_weights(config.backbone, config.resolved_weights())
    dtype = device.compute_dtype(config.precision)
    layers = tuple(dict.fromkeys(config.content_layers + config.style_layers))
    extractor = cached_extractor(config.backbone, layers, config.pooling, weights_path, dtype)
    objective = Objective(
        extractor,
        config.content_layers,
        config.style_layer_weight_map(),
        config.content_weight,
        config.style_weight,
        config.tv_weight,
    )

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
        return out.astype(np.float32)

    clock = _Clock(schedule)
    num_scales = len(schedule)
    x = None
    for index, (h, w, steps) in enumerate(schedule):
        content_s = resize(work_content, h, w)
        if x is None:
            if init_rgb is not None:
                x = resize(init_rgb, h, w)
            elif config.init == "noise":
                x = rng.uniform(0.0, 255.0, size=(h, w, 3)).astype(np.float32)
            else:
                x = content_s.copy()
        else:
            x = np.clip(resize(x, h, w), 0.0, 255.0)

        content_targets = objective.content_targets(content_s)
        style_long = min(MAX_STYLE_SIDE, config.style_scale * max(h, w))
        grams = [objective.style_grams(resize(s, *fit_long_side(*s.shape[:2], style_long))) for s in style_rgbs]
        style_targets = objective.blend_grams(grams, blend)
        tv_ref = objective.tv_reference(content_s)

        def value_and_grad(img, _ct=content_targets, _st=style_targets, _tv=tv_ref):
            loss, grad, _ = objective.value_and_grad(img[None], _ct, _st, _tv)
            return float(loss), grad.numpy()[0]

        def on_step(step, loss, current, _i=index, _h=h, _w=w, _n=steps):
            elapsed, eta = clock.step(_i, step)
            if on_progress is not None:
                snapshot = current
                on_progress(
                    Progress(
                        scale=_i + 1,
                        num_scales=num_scales,
                        step=step,
                        num_steps=_n,
                        loss=float(loss),
                        elapsed_s=elapsed,
                        eta_s=eta,
                        size=(_h, _w),
                        image=lambda snap=snapshot, sz=(_h, _w): finish(np.asarray(snap, np.float32), sz),
                    )
                )

        clock.mark()
        try:
            x, _ = minimize(
                value_and_grad,
                x,
                steps,
                method=config.optimizer,
                history=config.lbfgs_history,
                learning_rate=config.learning_rate,
                on_step=on_step,
                should_stop=should_stop,
            )
        except StopRequested as stop:
            best = stop.best if stop.best is not None else (x if index > 0 else None)
            raise Cancelled(finish(best, target) if best is not None else None) from None
        x = np.clip(x, 0.0, 255.0)

    return finish(x, target)
