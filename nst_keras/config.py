"""StyleConfig: every setting of a style-transfer run and its default, in one place.

The command line (cli.py) is generated from the fields of StyleConfig and their metadata,
and the GIMP plug-in's defaults are checked against it by a test, so the three never
disagree. `validate()` turns any value a user could type into a clear ValueError that says
what was expected and what was received.

Three kinds of "weights", kept apart by their names: `weights` is the network's weights file
(its trained parameters); content_weight, style_weight and tv_weight are the loss terms'
weights; style_layer_weights and style_blend are shares (each normalised to sum to 1) of the
style layers and of the style images.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from . import schedule
from .backend.selection import CHOICES as BACKEND_CHOICES
from .network import BACKBONES, CONV_LAYERS, VGG16_CONV_LAYERS, VGG19_CONV_LAYERS  # noqa: F401 - re-exported
from .schedule import PRESET_ITERATIONS  # noqa: F401 - the presets' table, importable from here as before

OPTIMIZERS = ("auto", "lbfgs", "adam")
POOLINGS = ("max", "avg")
COLOR_MODES = ("luminance", "histogram")
INIT_MODES = ("content", "noise")  # anything else is an image file path
PRECISIONS = ("auto", "float32", "mixed", "bfloat16")
PRESETS = tuple(PRESET_ITERATIONS)  # draft, normal, high
STYLE_LOSSES = ("gram", "mean_cov")

# Style strength: 50 is the balance of content_weight and style_weight as set; each 25 more
# (or less) multiplies (or divides) the style's weight by 10, so 0..100 spans
# 1/100 .. 100 times the style weight on a log scale.
STRENGTH_DEFAULT = 50.0
STRENGTH_PER_DECADE = 25.0

DEFAULT_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
# The default recipe, chosen on the gallery (bench/recipes.py, bench/gallery.py): content at conv4_2
# (Gatys et al.), the style's mean and covariance with shallow layers weighted most (crowsonkb's
# style-transfer-pytorch). Content at block5_conv2 with equal-weight Gram matrices (the old
# default) lost the subject in most cells. The layer names exist in VGG19 and VGG16.
DEFAULT_CONTENT_LAYERS = ("block4_conv2",)
DEFAULT_STYLE_LAYER_WEIGHTS = (256.0, 64.0, 16.0, 4.0, 1.0)


class Look(NamedTuple):
    """A named balance: the style layers' split (used while style_layer_weights is left at its default)
    and where strength 50 sits, in strength units above the plain balance of style_weight."""

    style_layer_weights: tuple
    strength_offset: float


# The looks (--look; the GIMP dialog's "Balance"). 'photo', the default, keeps the subject on every
# gallery cell but the mosaic ones (bench/gallery.py). 'painterly' is the balance that matched
# crowsonkb/style-transfer-pytorch's quality in 1/16 of its time (bench/bench_peer.py, docs/benchmarks.md
# "Against a peer"): block2 weighted as that peer's Wasserstein-2 term weighs it in effect, far less on
# the deep layers, and the style 10^(41/25) = 43.7x stronger (its strength 50 is photo's 91). It paints
# the style's strokes in; with fine hatching it can paint the photo away (the gallery, same section).
LOOKS = {
    "photo": Look(DEFAULT_STYLE_LAYER_WEIGHTS, 0.0),
    "painterly": Look((256.0, 160.0, 4.0, 0.5, 0.1), 41.0),
}
LOOK_DEFAULT = "photo"
# style_layer_weights' default: the look's split on the default style layers, with other style layers each
# layer 4x the next (an empty tuple is no valid split, so it cannot be confused with one typed in).
LOOK_SPLIT: tuple = ()

# The optimiser per scale (see StyleConfig.optimizer_at): measured with bench/bench_optimizers.py.
# From the photo, Adam on a 6-level pyramid gets furthest per step; from an upscaled coarser
# result (every later scale), L-BFGS on the pixels does.
ADAM_PYRAMID_LEVELS = 6
PYRAMID_LEARNING_RATE = 5.0
PIXEL_LEARNING_RATE = 2.0


class OptimizerSettings(NamedTuple):
    method: str  # "lbfgs" or "adam"
    pyramid_levels: int  # 1: the pixels
    learning_rate: float  # Adam's, in grey levels


# Special value of `weights` for tests and benchmarks of plumbing: random initialisation.
RANDOM_WEIGHTS = "random"


def _meta(help: str, *, flag: Optional[str] = None, choices=None, metavar=None, nargs=None, cli: bool = True):
    """Metadata that cli.py reads to build the command line."""
    return {"help": help, "flag": flag, "choices": choices, "metavar": metavar, "nargs": nargs, "cli": cli}


@dataclass(frozen=True)
class StyleConfig:
    """All settings of one run. Frozen: use `dataclasses.replace(config, field=value)`."""

    # The network.
    backbone: str = field(default="vgg19", metadata=_meta("feature network", choices=BACKBONES))
    weights: Optional[str] = field(
        default=None,
        metadata=_meta(
            "network weights file (.h5); default: Keras's ImageNet file, downloaded once and cached "
            "(env NST_KERAS_WEIGHTS also sets it)",
            metavar="FILE",
        ),
    )
    pooling: str = field(default="max", metadata=_meta("pooling layers of the network", choices=POOLINGS))

    # Size and schedule.
    max_size: int = field(
        default=1024,
        metadata=_meta(
            "longest side of the output in pixels (the content's own size if smaller); 0: no cap", metavar="PX"
        ),
    )
    min_size: int = field(default=256, metadata=_meta("longest side at the first, coarsest scale", metavar="PX"))
    preset: str = field(default="normal", metadata=_meta("quality preset (iterations per scale)", choices=PRESETS))
    iterations: Optional[int] = field(
        default=None, metadata=_meta("iterations at every scale (overrides the preset)", metavar="N")
    )

    # The loss.
    content_weight: float = field(default=1.0, metadata=_meta("how much the content is kept", metavar="W"))
    look: str = field(
        default=LOOK_DEFAULT,
        metadata=_meta(
            "the balance of photo and style: photo (the subject kept sharp) or painterly (the style's strokes "
            "take over; fine hatching can paint the photo away); strength moves either one",
            choices=tuple(LOOKS),
        ),
    )
    style_weight: float = field(
        default=10.0,
        metadata=_meta("the style term's weight, before strength and look (an expert setting)", metavar="W"),
    )
    strength: float = field(
        default=STRENGTH_DEFAULT,
        metadata=_meta(
            "style strength from 0 to 100 (the style dominates); "
            f"{STRENGTH_DEFAULT:g}: the look's own balance. Each {STRENGTH_PER_DECADE:g} more multiplies the style "
            "weight by 10: the effective style weight is style_weight x 10^((strength + offset - "
            f"{STRENGTH_DEFAULT:g}) / {STRENGTH_PER_DECADE:g}), offset 0 for the photo look (0: the photo barely "
            "touched) and 41 for painterly (its 0 is the photo look's 41)",
            metavar="S",
        ),
    )
    tv_weight: float = field(default=1.0, metadata=_meta("smoothness (total variation) weight", metavar="W"))
    content_layers: tuple = field(
        default=DEFAULT_CONTENT_LAYERS,
        metadata=_meta("network layers that define the content", nargs="+", metavar="LAYER"),
    )
    style_layers: tuple = field(
        default=DEFAULT_STYLE_LAYERS, metadata=_meta("network layers that define the style", nargs="+", metavar="LAYER")
    )
    style_loss: str = field(
        default="mean_cov",
        metadata=_meta(
            "the style statistic matched per layer: gram (Gram matrices, Gatys et al.) or mean_cov "
            "(the features' mean and covariance)",
            choices=STYLE_LOSSES,
        ),
    )
    style_layer_weights: Optional[tuple] = field(
        default=LOOK_SPLIT,
        metadata=_meta(
            "weight of each style layer, normalised to sum 1 (default: the look's split, photo's 256 64 16 4 1 "
            "(the shallow layers' fine texture first, as crowsonkb/style-transfer-pytorch), painterly's 256 160 4 "
            "0.5 0.1; with other --style-layers, each layer 4x the next)",
            nargs="+",
            metavar="W",
        ),
    )
    style_blend: Optional[tuple] = field(
        default=None, metadata=_meta("blend weight of each style image (default: equal)", nargs="+", metavar="W")
    )
    style_scale: float = field(
        default=1.0, metadata=_meta("size of the style image relative to the output", metavar="S")
    )
    preserve_colors: Optional[str] = field(
        default=None,
        metadata=_meta(
            "keep the content's colours: luminance-only transfer, or colour histogram matching", choices=COLOR_MODES
        ),
    )

    # The optimisation.
    init: str = field(default="content", metadata=_meta("start image: content, noise or an image FILE"))
    optimizer: str = field(
        default="auto",
        metadata=_meta(
            "optimiser: auto (Adam on a pyramid at the first scale, L-BFGS at the later ones), "
            "or lbfgs or adam at every scale",
            choices=OPTIMIZERS,
        ),
    )
    learning_rate: Optional[float] = field(
        default=None,
        metadata=_meta(
            f"Adam's step size, in grey levels (default: {PYRAMID_LEARNING_RATE:g} on a pyramid, "
            f"{PIXEL_LEARNING_RATE:g} on the pixels)",
            metavar="LR",
        ),
    )
    pyramid_levels: Optional[int] = field(
        default=None,
        metadata=_meta(
            "optimise a pyramid of this many resolutions (each half the last) instead of the pixels: "
            f"coarse structure forms in fewer steps; 1: the pixels (default: {ADAM_PYRAMID_LEVELS} for Adam, "
            "1 for L-BFGS)",
            metavar="N",
        ),
    )
    lbfgs_history: int = field(default=10, metadata=_meta("L-BFGS memory (number of past steps)", metavar="M"))
    seed: Optional[int] = field(
        default=None, metadata=_meta("random seed: the same seed gives the same result", metavar="N")
    )

    # Resources.
    backend: str = field(
        default="auto",
        metadata=_meta(
            "Keras backend: auto (KERAS_BACKEND, else the installer's choice, else the best installed one "
            "for this device), tensorflow, torch or jax",
            choices=BACKEND_CHOICES,
        ),
    )
    precision: str = field(
        default="auto",
        metadata=_meta(
            "numeric precision: auto (mixed float16 on a GPU; on a CPU the faster of float32 and bfloat16, "
            "measured once), float32, mixed (float16), bfloat16 (mixed bfloat16)",
            choices=PRECISIONS,
        ),
    )
    pixel_limit: int = field(
        default=200_000_000,
        metadata=_meta("refuse input images with more pixels than this (decompression-bomb guard)", metavar="N"),
    )
    memory_limit: Optional[float] = field(
        default=None,
        metadata=_meta(
            "memory budget in GiB: scales that do not fit are optimised in tiles (default: 60% of available RAM, "
            "or 70% of the GPU's free memory)",
            metavar="GIB",
        ),
    )
    tile_size: Optional[int] = field(
        default=None,
        metadata=_meta("force tiles of this size at large scales (default: only when needed)", metavar="PX"),
    )

    def validate(self, num_styles: Optional[int] = None) -> StyleConfig:
        """Check every value; raise ValueError naming the setting, what was expected and what was received."""
        _choice("backbone", self.backbone, BACKBONES)
        _choice("pooling", self.pooling, POOLINGS)
        _choice("preset", self.preset, PRESETS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("backend", self.backend, BACKEND_CHOICES)
        _choice("style_loss", self.style_loss, STYLE_LOSSES)
        _choice("look", self.look, tuple(LOOKS))
        if self.preserve_colors is not None:
            _choice("preserve_colors", self.preserve_colors, COLOR_MODES)
        _int_at_least("max_size", self.max_size, 0)
        _int_at_least("min_size", self.min_size, 16)
        if self.iterations is not None:
            _int_at_least("iterations", self.iterations, 1)
        _int_at_least("lbfgs_history", self.lbfgs_history, 1)
        if self.pyramid_levels is not None:
            _int_at_least("pyramid_levels", self.pyramid_levels, 1)
        _int_at_least("pixel_limit", self.pixel_limit, 1)
        if self.tile_size is not None:
            _int_at_least("tile_size", self.tile_size, 64)
        for name in ("content_weight", "style_weight", "tv_weight"):
            _non_negative(name, getattr(self, name))
        _positive("style_scale", self.style_scale)
        if (
            not isinstance(self.strength, (int, float))
            or isinstance(self.strength, bool)
            or not 0 <= self.strength <= 100
        ):
            raise ValueError(f"strength: expected a number from 0 to 100, received {self.strength!r}")
        if self.learning_rate is not None:
            _positive("learning_rate", self.learning_rate)
        if self.memory_limit is not None:
            _positive("memory_limit", self.memory_limit)
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0):
            raise ValueError(f"seed: expected a whole number >= 0, received {self.seed!r}")
        if not isinstance(self.init, str) or not self.init:
            raise ValueError(f"init: expected 'content', 'noise' or an image file path, received {self.init!r}")

        known = CONV_LAYERS[self.backbone]
        for name in ("content_layers", "style_layers"):
            layers = getattr(self, name)
            if not layers:
                raise ValueError(f"{name}: expected at least one layer name, received none")
            for layer in layers:
                if layer not in known:
                    raise ValueError(
                        f"{name}: unknown layer {layer!r} for backbone {self.backbone}; "
                        f"expected one of {', '.join(known)}"
                    )
        if self.style_layer_weights is not None and not self._split_from_look():
            _shares("style_layer_weights", self.style_layer_weights, len(self.style_layers), "style layers")
        if self.style_blend is not None and num_styles is not None:
            _shares("style_blend", self.style_blend, num_styles, "style images")
        if self.content_weight == 0 and self.style_weight == 0:
            raise ValueError("content_weight and style_weight are both 0: at least one must be above 0")
        return self

    # Derived values -------------------------------------------------------------------

    def target_size(self, height: int, width: int) -> tuple:
        """The output size for content of `height` x `width`: its own size, capped by max_size (schedule.py)."""
        return schedule.target_size(height, width, self.max_size)

    def scales(self, height: int, width: int) -> list:
        """The coarse-to-fine sizes (h, w) from about min_size up to the target, doubling (schedule.py)."""
        return schedule.scale_sizes(height, width, self.max_size, self.min_size)

    def iterations_per_scale(self, num_scales: int) -> list:
        """Iterations at each scale by index: --iterations everywhere, or the preset's geometric schedule.

        Without the sizes it cannot apply the fewer steps beyond 1024 px: a run's own schedule is
        schedule.plan_scales (sizes and iterations together).
        """
        return schedule.iterations_per_scale(num_scales, self.preset, self.iterations)

    def optimizer_at(self, scale_index: int) -> OptimizerSettings:
        """The optimiser, pyramid depth and Adam learning rate used at one scale (0 = the first, coarsest).

        'auto' runs Adam on a pyramid at the first scale, which starts from the photo (or noise),
        and L-BFGS on the pixels at the later ones, which start from the upscaled result of the
        scale before: measured on the sample at 512 px (bench/bench_optimizers.py), each is the
        one that gets furthest per step from that kind of start. Unset pyramid_levels and
        learning_rate take the defaults of the optimiser that runs.
        """
        method = self.optimizer
        if method == "auto":
            method = "adam" if scale_index == 0 else "lbfgs"
        levels = self.pyramid_levels
        if levels is None:
            levels = ADAM_PYRAMID_LEVELS if method == "adam" else 1
        rate = self.learning_rate
        if rate is None:
            rate = PYRAMID_LEARNING_RATE if levels > 1 else PIXEL_LEARNING_RATE
        return OptimizerSettings(method, int(levels), float(rate))

    def effective_style_weight(self) -> float:
        """style_weight scaled by strength and the look: x 10^((strength + offset - 50) / 25).

        With the photo look (offset 0) strength 0 -> 1/100, 50 -> 1, 100 -> 100 times style_weight;
        the painterly look's strength 50 is the photo look's 91.
        """
        strength = float(self.strength) + LOOKS[self.look].strength_offset
        return float(self.style_weight) * 10.0 ** ((strength - STRENGTH_DEFAULT) / STRENGTH_PER_DECADE)

    def style_layer_weight_map(self) -> dict:
        """Normalized weight (summing to 1) of each style layer.

        style_layer_weights as given; None: equal; left at LOOK_SPLIT: the look's split on the default
        style layers, and on other style layers each layer 4x the next (the photo look's ratios). The
        look's strength offset applies whatever the split.
        """
        n = len(self.style_layers)
        if self._split_from_look():
            if tuple(self.style_layers) == DEFAULT_STYLE_LAYERS:
                raw = tuple(LOOKS[self.look].style_layer_weights)
            else:  # the photo look's 4:1 ratios, first layer largest
                raw = tuple(4.0 ** (n - 1 - i) for i in range(n))
        else:
            raw = tuple(self.style_layer_weights or (1.0,) * n)
        total = float(sum(raw))
        return {layer: float(w) / total for layer, w in zip(self.style_layers, raw)}

    def style_blend_weights(self, num_styles: int) -> list:
        """Normalized blend weight (summing to 1) of each style image."""
        raw = self.style_blend or (1.0,) * num_styles
        total = float(sum(raw))
        return [float(w) / total for w in raw]

    def _split_from_look(self) -> bool:
        """True when style_layer_weights is left at its default (LOOK_SPLIT): the look decides the split.

        Any empty sequence counts (to_dict writes the default as [], and an empty split is no split).
        """
        weights = self.style_layer_weights
        return isinstance(weights, (tuple, list)) and len(weights) == 0

    def resolved_weights(self) -> Optional[str]:
        """The weights setting, with NST_KERAS_WEIGHTS as the fallback for None."""
        return self.weights or os.environ.get("NST_KERAS_WEIGHTS") or None

    def to_dict(self) -> dict:
        return {
            f.name: (list(v) if isinstance(v, tuple) else v)
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        }


def _choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(choices)}, received {value!r}")


def _int_at_least(name, value, low):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}: expected a whole number >= {low}, received {value!r}")


def _non_negative(name, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a number >= 0, received {value!r}")


def _positive(name, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a number > 0, received {value!r}")


def _shares(name, values, expected_len, what):
    if len(values) != expected_len:
        raise ValueError(f"{name}: expected {expected_len} weights (one per {what[:-1]}), received {len(values)}")
    for v in values:
        _non_negative(name, v)
    if sum(values) <= 0:
        raise ValueError(f"{name}: expected at least one weight above 0, received {list(values)}")
