"""The planner: before a run, how long it will take, how much memory it needs, where to tile.

A package of small modules, each with one job, none of which imports the engine:

- memory.py: the memory budget (free RAM, this process's resident size, the GPU's free memory);
- allocator.py: TensorFlow's CPU allocator, pooled or lean, chosen before the first tensor work;
- cost.py: the cost model, seconds and bytes per piece, linear in pixels, with its built-in defaults;
- calibration.py: a few seconds of measurement on this machine, cached, that replace those defaults
  (and the correction finished runs teach them: learn_from_run);
- plan.py: the plan search (scale by scale, whole or in tiles; the largest size that fits when
  nothing does) and `plan_run`, the engine's entry.

The time left during a run (Eta) lives beside the progress reports, in progress.py. This module
re-exports the public names, so `from nst_keras import planner; planner.make_plan(...)` works as before.
"""

from ..network import activation_floats, conv_macs, layer_stride
from ..progress import Eta
from .allocator import (
    LEAN_ENV,
    LEAN_WHEN,
    POOLED_GROWTH,
    allocator_mode,
    note_tensorflow_started,
    use_lean_memory,
)
from .calibration import (
    CACHE_ENV,
    CALIBRATION_FILE,
    CALIBRATION_VERSION,
    RECALIBRATE_ENV,
    cache_dir,
    calibrate,
    calibration_key,
    learn_from_run,
    load_per_core,
)
from .cost import DEFAULT_TIME, MEMORY, REFERENCE_MACS, CostModel, default_time
from .memory import GIB, available_ram, current_rss, default_budget
from .plan import MIN_TILE_SIDE, PLAN_SHARE, Plan, ScalePlan, make_plan, passes_for, plan_run, wants_lean

__all__ = [
    "CACHE_ENV",
    "CALIBRATION_FILE",
    "CALIBRATION_VERSION",
    "DEFAULT_TIME",
    "GIB",
    "LEAN_ENV",
    "LEAN_WHEN",
    "MEMORY",
    "MIN_TILE_SIDE",
    "PLAN_SHARE",
    "POOLED_GROWTH",
    "RECALIBRATE_ENV",
    "REFERENCE_MACS",
    "CostModel",
    "Eta",
    "Plan",
    "ScalePlan",
    "activation_floats",
    "allocator_mode",
    "available_ram",
    "cache_dir",
    "calibrate",
    "calibration_key",
    "conv_macs",
    "current_rss",
    "default_budget",
    "default_time",
    "layer_stride",
    "learn_from_run",
    "load_per_core",
    "make_plan",
    "note_tensorflow_started",
    "passes_for",
    "plan_run",
    "use_lean_memory",
    "wants_lean",
]
