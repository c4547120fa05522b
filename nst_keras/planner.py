"""The planner: before a run, how long it will take, how much memory it needs, where to tile.

Models (both linear in pixels, which is what the measurements on this project's machines show):

- time: one evaluation of the objective (forward + gradient) costs eval_a + eval_b * pixels
  seconds, a forward pass alone (targets) fwd_a + fwd_b * pixels, and a step adds the
  optimiser's own work: lbfgs_b * pixels for L-BFGS (history 10; the two-loop recursion),
  adam_b * pixels for Adam on the pixels, adam_pyramid_b * pixels for Adam on a pyramid
  (composing the image and pulling the gradient back). A run of n L-BFGS steps makes n + 3
  evaluations (the first iteration's line search takes four); the optimiser can differ per
  scale (StyleConfig.optimizer_at). The coefficients come from a short
  measurement on this machine (`calibrate`, a few seconds), cached as JSON in the user's cache
  folder per device, network, pooling, precision and TensorFlow version.
- memory: the process's peak is base + per-pixel bytes of the largest piece the network works on
  (the whole scale, or one tile) + per-pixel bytes of the full-size images held while running.
  The network's share is proportional to the activations it keeps for the gradient, which
  `activation_floats` counts from the layer list; the constants were measured on these machines
  (TensorFlow 2.21 CPU, VGG19 to block5: peak RSS at 0.26, 1 and 2 megapixels).

`make_plan` decides, scale by scale, whether the scale fits the memory budget in one piece; if
not it chooses the cheapest tile grid that does (tiling.choose_grid). When even small tiles do
not fit, the plan says so, with the largest output size that does.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

from . import tiling
from .config import CONV_LAYERS, StyleConfig

GIB = 1024**3
CALIBRATION_VERSION = 2
CACHE_ENV = "NST_KERAS_CACHE_DIR"
CALIBRATION_FILE = "calibration.json"

DEFAULT_RAM_SHARE = 0.6  # of MemAvailable, when --memory-limit is not given
DEFAULT_GPU_SHARE = 0.7  # of the GPU's free memory
GRAM_COPY_BPP = 256.0  # Gram matrices in windows: one layer's features copied out (block1: 64 floats a pixel)
PLAN_SHARE = 0.92  # plan to this share of the budget: headroom for the memory model's error
MIN_TILE_SIDE = 256  # automatic tiles are at least this big: smaller ones see too little of the picture
LBFGS_EXTRA_EVALS = 3  # scipy's L-BFGS-B: n steps take n + 3 evaluations (measured; first line search)
ADAM_EXTRA_EVALS = 1

# Memory (bytes), measured on these machines with VGG19 up to block5_conv2, float32, CPU, per
# allocator mode (see "TensorFlow's CPU memory" below). The network's bytes per pixel scale with
# activation_floats() (322 for VGG19 to block5_conv2); see the module docstring.
MEMORY = {
    "pooled": {
        "base": 1.0 * GIB,  # TensorFlow, Keras, the model and its weights, Python
        "net_bpp_per_float": 1450 / 322.0,  # gradient evaluation, per activation float kept per pixel
        "fwd_bpp_per_float": 850 / 322.0,  # forward pass only (targets)
        # Twice the L-BFGS state's live size (600 bytes a pixel, the figure pooled runs were measured
        # against; a pool also keeps each step's temporaries).
        "opt_scale": 2.0,
    },
    "lean": {  # measured: a 4000x3000 run in tiles peaked at 5.4 GiB (timeline of every scale and tile)
        "base": 0.8 * GIB,
        "net_bpp_per_float": 1950 / 322.0,
        "fwd_bpp_per_float": 760 / 322.0,
        # The L-BFGS state is alive through every evaluation: its history pairs, x, the gradient, the
        # direction and the trial point (float32 numpy arrays). 0.1 until 2026-11-21 (from scipy's
        # float64 L-BFGS-B, whose arrays were taken to come and go): full lean runs then peaked
        # 0.54-0.56 GiB above their estimates (2048x1362 untiled, 4000x3000 in 3.3-megapixel tiles),
        # about the 10 pairs' 240 bytes a pixel.
        "opt_scale": 1.0,
    },
}
LBFGS_VECTOR_BPP = 12.0  # one float32 RGB image: the unit of the L-BFGS state (optimize._lbfgs)
ADAM_PIXELS_BPP = 60.0  # Adam's state and temporaries per pixel of the piece (x, m, v, gradient, update)
ADAM_PYRAMID_BPP = 150.0  # the same on a pyramid (4/3 the floats) + the composed image and its pull-back
IMG_BPP = 40.0  # float32 images the engine holds at the working scale, per pixel of that scale
IN_BPP = 32.0  # the content as passed in (RGBA float32) and the engine's float copy, per input pixel
GPU_WEIGHTS = 0.25 * GIB  # on a GPU: weights and the allocator's own reserve

# Time defaults (seconds), used until this machine is measured (CPU, 2 cores, TensorFlow 2.21).
DEFAULT_TIME = {
    "eval_a": 0.05,
    "eval_b": 13e-6,
    "fwd_a": 0.02,
    "fwd_b": 4.5e-6,
    "lbfgs_b": 1.2e-6,  # history 10
    "adam_b": 0.3e-6,
    "adam_pyramid_b": 1.0e-6,
    "shape_s": 0.5,
    "setup_s": 4.0,
}


# Network size ------------------------------------------------------------------------------------


def _block_channels(block: int) -> int:
    return min(64 * 2 ** (block - 1), 512)


def _conv_blocks(backbone: str, layers) -> list:
    """The block number of each convolution the network runs, up to the deepest of `layers` (all when none)."""
    order = CONV_LAYERS[backbone]
    deepest = max((order.index(name) for name in layers), default=len(order) - 1)
    return [int(name[5]) for name in order[: deepest + 1]]


def activation_floats(backbone: str, layers) -> float:
    """Floats per input pixel of the activations kept up to the deepest of `layers` (convolutions and pools)."""
    total = 0.0
    previous_block = 1
    for block in _conv_blocks(backbone, layers):
        if block != previous_block:  # a pooling layer between blocks
            total += _block_channels(previous_block) / 4**previous_block
            previous_block = block
        total += _block_channels(block) / 4 ** (block - 1)
    return total


def conv_macs(backbone: str, layers) -> float:
    """Multiply-adds per input pixel of the convolutions up to the deepest of `layers` (a forward pass)."""
    total = 0.0
    previous = 3
    for block in _conv_blocks(backbone, layers):
        channels = _block_channels(block)
        total += 9 * previous * channels / 4 ** (block - 1)
        previous = channels
    return total


REFERENCE_MACS = 370_368.0  # conv_macs("vgg19", ["block5_conv2"]): the network DEFAULT_TIME was measured with


def default_time(config: StyleConfig) -> dict:
    """DEFAULT_TIME scaled to the configured network's size: the estimate before any measurement."""
    ratio = conv_macs(config.backbone, config.content_layers + config.style_layers) / REFERENCE_MACS
    out = dict(DEFAULT_TIME)
    for key in ("eval_b", "fwd_b"):
        out[key] *= ratio
    return out


def layer_stride(name: str) -> int:
    """How many input pixels one feature position of layer 'blockN_convM' spans (2^(N-1))."""
    return 2 ** (int(name[5]) - 1)


# Memory budget -----------------------------------------------------------------------------------


def _meminfo() -> dict:
    out = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def current_rss() -> int:
    """This process's resident memory in bytes (0 where it cannot be read)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def available_ram() -> Optional[int]:
    """Memory the system can still give (MemAvailable), or None where unknown."""
    info = _meminfo()
    if "MemAvailable" in info:
        return info["MemAvailable"]
    try:  # macOS, Windows: psutil when installed
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - no psutil: unknown
        return None


def _gpu_free_bytes() -> Optional[int]:
    from .device import nvidia_smi_bytes

    return nvidia_smi_bytes("memory.free")


@lru_cache(maxsize=2)
def default_budget(kind: str) -> tuple:
    """(bytes, how it was chosen) for 'CPU' (process peak RSS) or 'GPU' (GPU memory); fixed per process."""
    if kind == "GPU":
        free = _gpu_free_bytes()
        if free is None:
            from . import device

            free = device.device_info().get("memory_bytes")
        if free:
            return int(DEFAULT_GPU_SHARE * free), f"{DEFAULT_GPU_SHARE:.0%} of the GPU's free memory"
        return 4 * GIB, "4 GiB (the GPU's free memory is unknown)"
    avail = available_ram()
    if avail is None:
        return 4 * GIB, "4 GiB (free memory is unknown)"
    return int(current_rss() + DEFAULT_RAM_SHARE * avail), f"{DEFAULT_RAM_SHARE:.0%} of available memory"


# TensorFlow's CPU memory ---------------------------------------------------------------------------
#
# With oneDNN (TensorFlow's default on x86 CPUs) the CPU allocator is a pool (BFC) that never gives
# memory back and grows in doubling regions: after a few scales and tiles of different shapes its
# resident size was up to twice what the run ever held at once (measured: 15.4 GB peak for a run
# planned at 7.6 GB). "Lean" mode makes oneDNN allocate from the system (malloc) and makes glibc serve
# every block above 1 MiB with its own mapping, returned on free, so the resident size follows what
# is alive and the memory model holds. It costs page faults (about 15% more time per step, measured
# at 512 px), so it is switched on only for runs that come near the budget. Both settings are read
# when TensorFlow first allocates, so the choice must come before any tensor work: the engine and
# the calibration call `note_tensorflow_started()` when they begin theirs.

LEAN_ENV = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"
LEAN_MMAP_THRESHOLD = 1 << 20
LEAN_WHEN = 0.45  # of the usable budget: above this estimate the pooled allocator's growth could overrun it
POOLED_GROWTH = 2.0  # what the pooled allocator may hold for the network, relative to what is alive

_state = {"started": False, "lean": None}


def allocator_mode() -> str:
    """'lean' or 'pooled': how TensorFlow's CPU memory behaves in this process (or will, once it starts)."""
    if _state["lean"] is None:
        _state["lean"] = os.environ.get(LEAN_ENV, "").strip().lower() in ("1", "true")
    return "lean" if _state["lean"] else "pooled"


def note_tensorflow_started() -> None:
    """From now on the allocator's mode is fixed (call before the first tensor work)."""
    allocator_mode()
    _state["started"] = True


def use_lean_memory() -> bool:
    """Switch to lean mode if it is still possible; True when the process is (now) in lean mode."""
    if allocator_mode() == "lean":
        return True
    if _state["started"] or os.environ.get(LEAN_ENV, "").strip().lower() in ("0", "false"):
        return False  # too late (TensorFlow has allocated), or the user asked for the pool
    os.environ[LEAN_ENV] = "1"
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-3, LEAN_MMAP_THRESHOLD)  # M_MMAP_THRESHOLD (fixed: no dynamic raise)
            libc.mallopt(-1, 32 << 20)  # M_TRIM_THRESHOLD: give freed heap tops back too
        except (OSError, AttributeError):
            pass
    _state["lean"] = True
    return True


# Calibration -------------------------------------------------------------------------------------


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
    from . import backend

    layers = config.content_layers + config.style_layers
    order = CONV_LAYERS[config.backbone]
    deepest = max(layers, key=order.index)
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
    from . import device

    info = device.device_info()
    dtype = device.compute_dtype(config.precision)
    key = calibration_key(config, f"{info['kind']}: {info['name']}", dtype)
    path = os.path.join(cache_dir(), CALIBRATION_FILE)
    data = _read_cache(path)
    entry = data["entries"].get(key)
    usable = isinstance(entry, dict) and all(isinstance(entry.get(k), (int, float)) for k in DEFAULT_TIME)
    if usable and not refresh and not (measure and info["kind"] == "CPU" and _measured_while_busy(entry)):
        return {**entry, "source": "cache"}
    if not measure:
        return {**default_time(config), "source": "default"}
    entry = _measure(config, dtype, info["kind"] == "GPU")
    data = _read_cache(path)  # another process may have written meanwhile
    data["version"] = CALIBRATION_VERSION
    data["entries"][key] = entry
    _write_cache(path, data)
    return {**entry, "source": "measured"}


def _measure(config: StyleConfig, dtype: str, gpu: bool) -> dict:
    """A few seconds of measurement with random weights (speed does not depend on the weights' values)."""
    import numpy as np

    from .config import RANDOM_WEIGHTS
    from .features import FeatureExtractor
    from .gradient import Objective
    from .optimize import minimize

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
    from . import backend

    backend.seam().sync(tensor)


def _reset_gpu_stats() -> None:
    from . import backend

    backend.seam().reset_peak_memory()


def _gpu_peak_bytes() -> float:
    from . import backend

    return backend.seam().peak_memory_bytes()


# The models ----------------------------------------------------------------------------------------


@dataclass
class CostModel:
    """Time and memory per piece for one configuration on one device."""

    kind: str  # "CPU" or "GPU"
    time: dict
    net_bpp: float  # bytes per pixel of a gradient evaluation (device memory)
    fwd_bpp: float  # bytes per pixel of a forward pass
    opt_bpp: float  # bytes per pixel of the optimiser's state (host memory)
    img_bpp: float  # bytes per output pixel of the images the run holds (host memory)
    base: float  # host bytes before any image
    extra_evals: int  # evaluations beyond the step count per optimiser run (later scales)
    driver_b: float  # seconds per step and pixel of the optimiser's own work (later scales)
    first_extra_evals: int  # the same two at the first scale, whose optimiser may differ
    first_driver_b: float

    @classmethod
    def for_config(
        cls, config: StyleConfig, kind: str, dtype: str, time_coefficients: dict, memory: str = "lean", growth=1.0
    ) -> CostModel:
        """`memory`: the CPU allocator's mode; `growth`: how much more than it holds alive a pool may keep."""
        constants = MEMORY[memory]
        floats = activation_floats(config.backbone, config.content_layers + config.style_layers)
        half = 0.6 if dtype == "float16" else 1.0
        net = constants["net_bpp_per_float"] * floats * half * growth
        if kind == "GPU" and time_coefficients.get("gpu_bpp"):
            net = float(time_coefficients["gpu_bpp"])
        times = {k: float(time_coefficients.get(k, v)) for k, v in DEFAULT_TIME.items()}

        def optimiser(scale_index):  # (state bytes per pixel, extra evaluations, seconds per step and pixel)
            method, levels, _ = config.optimizer_at(scale_index)
            if method == "lbfgs":
                # the pairs of the history, the gradient and a few temporaries; 4 * history + 10 passes a step
                driver = times["lbfgs_b"] * (4 * config.lbfgs_history + 10) / 50.0
                if levels > 1:
                    driver += times["adam_pyramid_b"] - times["adam_b"]  # composing and pulling back
                live = LBFGS_VECTOR_BPP * (2 * config.lbfgs_history + 5)  # the pairs, x, gradient, direction, trial
                return live * constants["opt_scale"], LBFGS_EXTRA_EVALS, driver
            # Adam keeps x, m and v and a few temporaries alive through the whole run (4/3 as long on a
            # pyramid, which also composes and pulls back an image per step).
            if levels > 1:
                return ADAM_PYRAMID_BPP, ADAM_EXTRA_EVALS, times["adam_pyramid_b"]
            return ADAM_PIXELS_BPP, ADAM_EXTRA_EVALS, times["adam_b"]

        first, later = optimiser(0), optimiser(1)
        return cls(
            kind=kind,
            time=times,
            net_bpp=net,
            fwd_bpp=constants["fwd_bpp_per_float"] * floats * half * growth,
            opt_bpp=max(first[0], later[0]),
            img_bpp=IMG_BPP,
            base=constants["base"],
            extra_evals=later[1],
            driver_b=later[2],
            first_extra_evals=first[1],
            first_driver_b=first[2],
        )

    # time
    def t_eval(self, px: float) -> float:
        return self.time["eval_a"] + self.time["eval_b"] * px

    def t_fwd(self, px: float) -> float:
        return self.time["fwd_a"] + self.time["fwd_b"] * px

    def t_run(self, px: float, steps: int, first: bool = False) -> float:
        """An optimiser run of `steps` steps on a piece of `px` pixels, its content targets included.

        `first`: the run belongs to the first scale, whose optimiser may differ from the later ones'.
        """
        extra, driver = (self.first_extra_evals, self.first_driver_b) if first else (self.extra_evals, self.driver_b)
        return self.t_fwd(px) + (steps + extra) * self.t_eval(px) + steps * driver * px

    # memory
    def piece_bytes(self, px: float) -> float:
        """Peak bytes a gradient evaluation adds in the memory the budget is about."""
        return (self.net_bpp if self.kind == "GPU" else self.net_bpp + self.opt_bpp) * px

    def image_bytes(self, target_px: float, input_px: float) -> float:
        return self.img_bpp * target_px + IN_BPP * input_px

    def held_bytes(self, target_px: float, input_px: float) -> float:
        """Bytes held outside the network, in the budgeted memory (GPU: the weights)."""
        if self.kind == "GPU":
            return GPU_WEIGHTS
        return self.base + self.image_bytes(target_px, input_px)

    def host_bytes(self, target_px: float, input_px: float, piece_px: float) -> float:
        return self.base + self.image_bytes(target_px, input_px) + self.opt_bpp * piece_px


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
    from . import device

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
        style_long = min(4096, config.style_scale * max(h, w))
        shapes = style_shapes or [(h, w)]
        style_fwd = 0.0
        style_piece = 0
        for sh, sw in shapes:
            scale = style_long / max(sh, sw)
            spx = max(1, round(sh * scale)) * max(1, round(sw * scale))
            if spx * model.fwd_bpp <= max(room, 0):
                style_fwd += model.t_fwd(spx)
                style_piece = max(style_piece, spx)
            else:
                window = max(room, 0) / (model.fwd_bpp + GRAM_COPY_BPP)
                sp.gram_window_pixels = int(max(window, (2 * 128 + 2 * tiling.ALIGN) ** 2))
                wins = tiling.gram_windows(round(sh * scale), round(sw * scale), sp.gram_window_pixels)
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
    import dataclasses

    from .engine import plan_scales

    h, w = content_hw
    lo, hi = 32, max(config.target_size(h, w))
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

    def at(self, scale_index: int, run_index: int, fraction: float) -> tuple:
        """(elapsed seconds, estimated seconds left) when run `run_index` of scale `scale_index` is `fraction` done."""
        i = self.offsets[scale_index] + run_index
        done = self.cumulative[i] + self.flat[i] * min(1.0, max(0.0, fraction))
        elapsed = time.perf_counter() - self.start
        ratio = (elapsed + self.prior) / (done + self.prior)
        return elapsed, max(0.0, (self.total - done) * ratio)
