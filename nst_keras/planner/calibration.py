"""Calibration: a few seconds of measurement that give the cost model its time coefficients on this machine.

Cached as JSON in the user's cache folder, one entry per device, network, pooling, precision,
allocator mode and TensorFlow version; measured again when asked (NST_KERAS_RECALIBRATE=1) or
when an entry was taken while the machine was busy and it is quiet now.

On a CPU it also decides what precision 'auto' computes in (`cpu_precision`): float32 and
bfloat16 are timed in turn on a small objective, and bfloat16 is chosen only when it is clearly
faster (CPUs with AMX run it several times faster; those without it, slower). One entry per CPU
and framework version, with the timings and the reason, which `doctor` shows.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Optional

from ..config import StyleConfig
from ..network import deepest_layer
from .allocator import allocator_mode, note_tensorflow_started
from .cost import DEFAULT_TIME, RUN_SCALE_BOUNDS, RUN_SCALE_KEY, default_time, run_time_scale

CALIBRATION_VERSION = 2
CACHE_ENV = "NST_KERAS_CACHE_DIR"
CALIBRATION_FILE = "calibration.json"


def cache_dir() -> str:
    """The user's cache folder for nst-keras ($NST_KERAS_CACHE_DIR overrides)."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    if sys.platform == "win32":
        root = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(root, "nst-keras", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/nst-keras")
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nst-keras")


def calibration_key(config: StyleConfig, device_name: str, dtype: str) -> str:
    from .. import backend

    deepest = deepest_layer(config.backbone, config.content_layers + config.style_layers)
    parts = (
        device_name,
        config.backbone,
        deepest,
        config.pooling,
        dtype,
        allocator_mode() if device_name.startswith("CPU") else "gpu",
        backend.seam().version_tag(),
        f"v{CALIBRATION_VERSION}",
    )
    return "|".join(parts)


def _read_cache(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if isinstance(data, dict) and isinstance(data.get("entries"), dict):
            return data
    except (OSError, ValueError):
        pass
    return {"version": CALIBRATION_VERSION, "entries": {}}


def _write_cache(path: str, data: dict) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs the measurement next time


CAL_SIZES = ((128, 128), (256, 256))  # two sizes: intercept and slope of the linear model
GPU_CAL_SIZES = ((256, 256), (512, 512))
CAL_REPEATS = 2
RECALIBRATE_ENV = "NST_KERAS_RECALIBRATE"
BUSY_LOAD = 1.5  # load average per core above which a CPU measurement is taken as disturbed by other work
QUIET_LOAD = 0.75  # ... and below which the machine is quiet enough to measure it again


def _load_per_core() -> Optional[float]:
    """The 1-minute load average per CPU core (None where the system does not tell)."""
    try:
        return os.getloadavg()[0] / max(1, os.cpu_count() or 1)
    except (AttributeError, OSError):
        return None


def load_per_core() -> Optional[float]:
    """The 1-minute load average per CPU core, looked up at call time (tests replace _load_per_core)."""
    return _load_per_core()


def _usable_timing(entry) -> bool:
    return isinstance(entry, dict) and all(isinstance(entry.get(k), (int, float)) for k in DEFAULT_TIME)


def _measured_while_busy(entry: dict) -> bool:
    """A CPU entry measured under heavy load, while the machine is quiet now: worth measuring again."""
    then, now = entry.get("load_per_core"), _load_per_core()
    return isinstance(then, (int, float)) and then >= BUSY_LOAD and now is not None and now < QUIET_LOAD


def calibrate(config: StyleConfig, *, measure: bool = True, refresh: bool = False) -> dict:
    """Time coefficients for this machine, network and precision: cached, measured, or the defaults.

    The result has the DEFAULT_TIME keys plus 'source' ('cache', 'measured' or 'default'),
    and on a GPU 'gpu_bpp' (bytes per pixel of a gradient evaluation, measured). `refresh`
    (or the environment variable NST_KERAS_RECALIBRATE=1) measures again and replaces the
    cached entry. A CPU entry measured while the machine was busy (load average of at least
    BUSY_LOAD per core: other work slowed every timing) is measured again once the machine is
    quiet (below QUIET_LOAD per core), so one unlucky moment does not skew estimates for good.
    """
    refresh = refresh or os.environ.get(RECALIBRATE_ENV, "") not in ("", "0")
    from .. import device

    info = device.device_info()
    # on a CPU with precision 'auto', the precision race is part of the calibration (run again on refresh)
    dtype = device.compute_dtype(config.precision, measure=measure, refresh=refresh and measure)
    key = calibration_key(config, _device_name(info), dtype)
    path = os.path.join(cache_dir(), CALIBRATION_FILE)
    data = _read_cache(path)
    entry = data["entries"].get(key)
    stale = measure and info["kind"] == "CPU" and _usable_timing(entry) and _measured_while_busy(entry)
    if _usable_timing(entry) and not refresh and not stale:
        return {**entry, "source": "cache"}
    if not measure:
        return {**default_time(config), "source": "default"}
    entry = _measure(config, dtype, info["kind"] == "GPU")
    data = _read_cache(path)  # another process may have written meanwhile
    data["version"] = CALIBRATION_VERSION
    data["entries"][key] = entry
    _write_cache(path, data)
    return {**entry, "source": "measured"}


def _device_name(info: dict) -> str:
    return f"{info['kind']}: {info['name']}"


# Each finished run on a quiet machine moves its entry's correction (cost.RUN_SCALE_KEY) toward
# measured / planned time.
RUN_SCALE_WEIGHT = 0.5  # the newest run's share (geometric): two runs take the correction most of the way
RUN_SCALE_MIN_S = 10.0  # shorter runs are mostly per-shape overheads, which say little about longer ones


def learn_from_run(config: StyleConfig, planned_s: float, measured_s: float, load_before=None) -> Optional[float]:
    """Move the cached entry's correction toward measured_s / planned_s; return the new correction, or None.

    `planned_s`: the optimisation time the plan predicted (its correction included), `measured_s`: what the
    run took, `load_before`: the load average per core when it started. Nothing is learnt from a run on a
    busy machine (at either end), a short run, or a configuration with no measured entry to correct.
    """
    if not (planned_s >= RUN_SCALE_MIN_S and measured_s > 0):
        return None
    load_after = _load_per_core()
    if any(isinstance(v, (int, float)) and v >= BUSY_LOAD for v in (load_before, load_after)):
        return None
    from .. import device

    key = calibration_key(config, _device_name(device.device_info()), device.compute_dtype(config.precision))
    path = os.path.join(cache_dir(), CALIBRATION_FILE)
    data = _read_cache(path)
    entry = data["entries"].get(key)
    if not _usable_timing(entry):
        return None
    old = run_time_scale(entry)
    low, high = RUN_SCALE_BOUNDS
    new = min(high, max(low, old * (measured_s / planned_s) ** RUN_SCALE_WEIGHT))
    entry[RUN_SCALE_KEY] = new
    entry["runs_learnt"] = int(entry.get("runs_learnt", 0)) + 1
    _write_cache(path, data)
    return new


PRECISION_VERSION = 1
PRECISION_SIZE = (160, 160)  # the image of the precision race: small, but every layer does real work
PRECISION_ROUNDS = 3
PRECISION_MARGIN = 0.85  # bfloat16 must take at most this share of float32's time (its pictures differ a little)
PRECISION_CANDIDATES = ("float32", "bfloat16")


def precision_key(device_name: str) -> str:
    from .. import backend

    return "|".join(("precision", device_name, backend.seam().version_tag(), f"v{PRECISION_VERSION}"))


def choose_precision(timings: dict) -> tuple:
    """(dtype, reason) from {'float32': seconds, 'bfloat16': seconds or None (it failed)}."""
    f32, bf16 = timings.get("float32"), timings.get("bfloat16")
    size = "x".join(str(v) for v in PRECISION_SIZE)
    if not isinstance(f32, (int, float)) or f32 <= 0:
        return "float32", "float32: the measurement of float32 failed, so nothing to compare with"
    if not isinstance(bf16, (int, float)) or bf16 <= 0:
        return "float32", "float32: bfloat16 did not run (or gave a non-finite loss) on this CPU"
    ratio = bf16 / f32
    figures = f"bfloat16 {bf16 * 1000:.0f} ms vs float32 {f32 * 1000:.0f} ms per evaluation at {size}"
    if ratio <= PRECISION_MARGIN:
        return "bfloat16", f"bfloat16: {1 / ratio:.1f}x faster than float32 here ({figures})"
    return "float32", f"float32: bfloat16 is not faster enough here ({ratio:.2f}x float32's time; {figures})"


def cpu_precision(*, measure: bool = False, refresh: bool = False) -> dict:
    """The precision 'auto' uses on this CPU: {'dtype', 'reason', 'source'} plus the timings.

    'source' is 'cache', 'measured' or 'default' (nothing cached and `measure` False: float32,
    until a calibration measures it).
    """
    refresh = refresh or os.environ.get(RECALIBRATE_ENV, "") not in ("", "0")
    from .. import device

    info = device.device_info()
    key = precision_key(_device_name(info))
    path = os.path.join(cache_dir(), CALIBRATION_FILE)
    entry = _read_cache(path)["entries"].get(key)
    usable = isinstance(entry, dict) and entry.get("dtype") in PRECISION_CANDIDATES
    if usable and not refresh and not (measure and _measured_while_busy(entry)):
        return {**entry, "source": "cache"}
    if not measure:
        return {"dtype": "float32", "reason": "float32: not measured on this CPU yet", "source": "default"}
    timings = _race_precisions()
    dtype, reason = choose_precision(timings)
    entry = {"dtype": dtype, "reason": reason, "timings": timings, "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
    load = _load_per_core()
    if load is not None:
        entry["load_per_core"] = load
    data = _read_cache(path)
    data["version"] = CALIBRATION_VERSION
    data["entries"][key] = entry
    _write_cache(path, data)
    return {**entry, "source": "measured"}


def _race_precisions() -> dict:
    """{dtype: median seconds of one value-and-gradient (None: it failed)}, the candidates in turn."""
    import math

    import numpy as np

    from ..config import RANDOM_WEIGHTS
    from ..features import FeatureExtractor
    from ..gradient import Objective

    note_tensorflow_started()
    config = StyleConfig(weights=RANDOM_WEIGHTS)
    layers = tuple(dict.fromkeys(config.content_layers + config.style_layers))
    img = np.random.default_rng(0).uniform(0.0, 255.0, (*PRECISION_SIZE, 3)).astype(np.float32)
    calls = {}
    for dtype in PRECISION_CANDIDATES:
        try:
            objective = Objective.from_config(
                FeatureExtractor(config.backbone, layers, "max", RANDOM_WEIGHTS, dtype), config
            )
            targets = (
                objective.content_targets(img),
                objective.style_grams(img),
                objective.tv_reference(img),
            )
            x = np.ascontiguousarray(img[::-1])  # another image than the targets': every term counts

            def call(objective=objective, targets=targets, x=x):
                return objective.numpy_value_and_grad(x, *targets)[0]

            if not math.isfinite(call()):  # the first call traces / compiles
                continue
            calls[dtype] = call
        except Exception:  # noqa: BLE001 - a precision this CPU or framework cannot run loses the race
            continue
    times: dict = {dtype: [] for dtype in calls}
    for _ in range(PRECISION_ROUNDS):
        for dtype, call in calls.items():
            start = time.perf_counter()
            call()
            times[dtype].append(time.perf_counter() - start)
    return {dtype: (float(np.median(times[dtype])) if times.get(dtype) else None) for dtype in PRECISION_CANDIDATES}


def _measure(config: StyleConfig, dtype: str, gpu: bool) -> dict:
    """A few seconds of measurement with random weights (speed does not depend on the weights' values)."""
    import numpy as np

    from ..config import RANDOM_WEIGHTS
    from ..features import FeatureExtractor
    from ..gradient import Objective
    from ..optimize import minimize

    note_tensorflow_started()
    load_before = _load_per_core()
    t0 = time.perf_counter()
    layers = tuple(dict.fromkeys(config.content_layers + config.style_layers))
    extractor = FeatureExtractor(config.backbone, layers, config.pooling, RANDOM_WEIGHTS, dtype)
    objective = Objective.from_config(extractor, config)
    rng = np.random.default_rng(0)
    evals, fwds, firsts = [], [], []
    setup = None
    gpu_bpp = None
    sizes = GPU_CAL_SIZES if gpu else CAL_SIZES
    for h, w in sizes:
        img = rng.uniform(0.0, 255.0, (h, w, 3)).astype(np.float32)
        ct = objective.content_targets(img)
        st = {name: objective.style_grams(img)[name] for name in objective.style_layers}
        tv = objective.tv_reference(img)
        if gpu:
            _reset_gpu_stats()
        start = time.perf_counter()
        _sync(objective.value_and_grad(img[None], ct, st, tv)[0])
        firsts.append(time.perf_counter() - start)
        if setup is None:
            setup = time.perf_counter() - t0
        runs = []
        for _ in range(CAL_REPEATS):
            start = time.perf_counter()
            _sync(objective.value_and_grad(img[None], ct, st, tv)[0])
            runs.append(time.perf_counter() - start)
        evals.append(min(runs))
        if gpu:
            gpu_bpp = _gpu_peak_bytes() / (h * w)
        runs = []
        for _ in range(CAL_REPEATS):
            start = time.perf_counter()
            _sync(next(iter(objective.features(img).values())))
            runs.append(time.perf_counter() - start)
        fwds.append(min(runs))
    (h1, w1), (h2, w2) = sizes
    p1, p2 = h1 * w1, h2 * w2
    eval_b = max((evals[1] - evals[0]) / (p2 - p1), evals[1] / p2 * 0.5)
    eval_a = max(0.0, evals[1] - eval_b * p2)
    fwd_b = max((fwds[1] - fwds[0]) / (p2 - p1), fwds[1] / p2 * 0.5)
    fwd_a = max(0.0, fwds[1] - fwd_b * p2)
    shape_s = max(0.0, firsts[1] - evals[1])

    # Each optimiser's own cost per step and pixel (no network: a quadratic on an image of the
    # larger size). An ill-conditioned quadratic, so that every step is a real one.
    shape = (h2, w2, 3)
    target = rng.uniform(0.0, 255.0, shape).astype(np.float32)
    curvature = np.geomspace(1.0, 1e3, target.size).astype(np.float32).reshape(shape)
    drivers = {}
    for key, method, levels in (("lbfgs_b", "lbfgs", 1), ("adam_b", "adam", 1), ("adam_pyramid_b", "adam", 6)):
        spent = [0.0]
        done = [0]

        def quadratic(x, spent=spent):
            start = time.perf_counter()
            d = x - target
            g = curvature * d
            out = float(0.5 * np.vdot(d, g)), g
            spent[0] += time.perf_counter() - start
            return out

        def count(step, loss, x, done=done):
            done[0] = step

        start = time.perf_counter()
        minimize(quadratic, np.zeros(shape, np.float32), 8, method=method, pyramid_levels=levels, on_step=count)
        drivers[key] = max(0.0, (time.perf_counter() - start - spent[0]) / (max(1, done[0]) * p2))
    del extractor, objective
    out = {
        "eval_a": eval_a,
        "eval_b": eval_b,
        "fwd_a": fwd_a,
        "fwd_b": fwd_b,
        **drivers,
        "shape_s": shape_s,
        "setup_s": setup or DEFAULT_TIME["setup_s"],
        "measured_s": time.perf_counter() - t0,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if load_before is not None:
        out["load_per_core"] = load_before  # the 1-minute average lags: it shows the other work, not this measurement
    if gpu_bpp:
        out["gpu_bpp"] = gpu_bpp
    return out


def _sync(tensor) -> None:
    """Wait for a tensor's value (GPU work is asynchronous)."""
    from .. import backend

    backend.seam().sync(tensor)


def _reset_gpu_stats() -> None:
    from .. import backend

    backend.seam().reset_peak_memory()


def _gpu_peak_bytes() -> float:
    from .. import backend

    return backend.seam().peak_memory_bytes()
