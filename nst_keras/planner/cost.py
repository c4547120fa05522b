"""The cost model: seconds and bytes of one optimiser run on a piece of a given size, for one configuration.

Both linear in pixels, which is what the measurements on this project's machines show:

- time: one evaluation of the objective (forward + gradient) costs eval_a + eval_b * pixels
  seconds, a forward pass alone (targets) fwd_a + fwd_b * pixels, and a step adds the
  optimiser's own work: lbfgs_b * pixels for L-BFGS (history 10; the two-loop recursion),
  adam_b * pixels for Adam on the pixels, adam_pyramid_b * pixels for Adam on a pyramid
  (composing the image and pulling the gradient back). A run of n L-BFGS steps makes n + 3
  evaluations (the first iteration's line search takes four); the optimiser can differ per
  scale (StyleConfig.optimizer_at). The coefficients come from calibration.py (measured on this
  machine, cached) or, before any measurement, DEFAULT_TIME scaled to the network's size.
- memory: the process's peak is base + per-pixel bytes of the largest piece the network works on
  (the whole scale, or one tile) + per-pixel bytes of the full-size images held while running.
  The network's share is proportional to the activations it keeps for the gradient, which
  network.activation_floats counts from the layer list; the constants were measured on these
  machines (TensorFlow 2.21 CPU, VGG19 to block5: peak RSS at 0.26, 1 and 2 megapixels).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import StyleConfig
from ..network import activation_floats, conv_macs
from .memory import GIB

LBFGS_EXTRA_EVALS = 3  # the engine's L-BFGS (optimize.py): n steps take n + 3 evaluations (measured; first line search)
ADAM_EXTRA_EVALS = 1

# Memory (bytes), measured on these machines with VGG19 up to block5_conv2, float32, CPU, per
# allocator mode (allocator.py). The network's bytes per pixel scale with
# activation_floats() (322 for VGG19 to block5_conv2).
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
# 2-byte activations save less memory than their size suggests (mixed bfloat16, TensorFlow 2.21,
# VGG16, 2-core Xeon, 2026-12-02). A gradient evaluation of a 3000x1424 tile took 1575 bytes a pixel
# above the process's size (float32 2362, 0.67), and a cut-short 4000x3000 last scale in such tiles
# peaked at 8.95 GiB, 1570 bytes a pixel for the network beyond the L-BFGS state and the images:
# 0.88 of the float32 model's figure. A forward pass alone is not smaller at all: 776 against 775
# bytes a pixel at 2 megapixels (the float32 input and the cast copies). The shares were 0.6 for
# both until then, and a 4000x3000 run under --memory-limit 8 peaked at 9.7 GiB.
HALF_DTYPES = ("float16", "bfloat16")
HALF_NET_SHARE = 0.9
HALF_FWD_SHARE = 1.0
LBFGS_VECTOR_BPP = 12.0  # one float32 RGB image: the unit of the L-BFGS state (optimize._lbfgs)
ADAM_PIXELS_BPP = 60.0  # Adam's state and temporaries per pixel of the piece (x, m, v, gradient, update)
ADAM_PYRAMID_BPP = 150.0  # the same on a pyramid (4/3 the floats) + the composed image and its pull-back
IMG_BPP = 40.0  # float32 images the engine holds at the working scale, per pixel of that scale
IN_BPP = 32.0  # the content as passed in (RGBA float32) and the engine's float copy, per input pixel
GPU_NETWORK_BYTES = 0.25 * GIB  # on a GPU: weights and the allocator's own reserve

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


# What whole runs teach the time model (calibration.learn_from_run). The calibration times a few
# evaluations on small random images; a run adds what those cannot see (sustained clocks, larger working
# sets, the optimiser's and the progress listeners' work): bfloat16 runs on the 2-core Xeon took
# 1.15-1.36x their plan per scale (docs/benchmarks.md, 2026-12-02). A calibration entry keeps the
# correction under RUN_SCALE_KEY, and the model multiplies its time coefficients by it.
RUN_SCALE_KEY = "run_time_scale"
RUN_SCALE_BOUNDS = (0.5, 3.0)


def run_time_scale(coefficients: dict) -> float:
    """The correction whole runs taught the entry `coefficients` came from (1.0 when there is none)."""
    value = coefficients.get(RUN_SCALE_KEY, 1.0)
    if not isinstance(value, (int, float)) or not value > 0:
        return 1.0
    low, high = RUN_SCALE_BOUNDS
    return float(min(high, max(low, value)))


REFERENCE_MACS = 370_368.0  # conv_macs("vgg19", ["block5_conv2"]): the network DEFAULT_TIME was measured with


def default_time(config: StyleConfig) -> dict:
    """DEFAULT_TIME scaled to the configured network's size: the estimate before any measurement."""
    ratio = conv_macs(config.backbone, config.content_layers + config.style_layers) / REFERENCE_MACS
    out = dict(DEFAULT_TIME)
    for key in ("eval_b", "fwd_b"):
        out[key] *= ratio
    return out


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
        half = HALF_NET_SHARE if dtype in HALF_DTYPES else 1.0
        half_fwd = HALF_FWD_SHARE if dtype in HALF_DTYPES else 1.0
        net = constants["net_bpp_per_float"] * floats * half * growth
        if kind == "GPU" and time_coefficients.get("gpu_bpp"):
            net = float(time_coefficients["gpu_bpp"])
        # What finished runs taught (calibration.learn_from_run) scales the work, not the one-off setup.
        correction = run_time_scale(time_coefficients)
        times = {
            k: float(time_coefficients.get(k, v)) * (1.0 if k == "setup_s" else correction)
            for k, v in DEFAULT_TIME.items()
        }

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
            fwd_bpp=constants["fwd_bpp_per_float"] * floats * half_fwd * growth,
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
            return GPU_NETWORK_BYTES
        return self.base + self.image_bytes(target_px, input_px)

    def host_bytes(self, target_px: float, input_px: float, piece_px: float) -> float:
        return self.base + self.image_bytes(target_px, input_px) + self.opt_bpp * piece_px
