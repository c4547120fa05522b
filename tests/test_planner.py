"""The planner: memory and time models, tiling decisions, the no-fit message, the calibration cache."""

import dataclasses
import json
import os
import time

import numpy as np
import pytest

import nst_keras
from nst_keras import StyleConfig, engine, planner
from nst_keras.planner import allocator, calibration, cost
from nst_keras.schedule import plan_scales

GIB = 1024**3
COEFFICIENTS = {**planner.DEFAULT_TIME, "source": "test"}
CFG = StyleConfig(weights="random", max_size=0)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(planner.CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture
def no_precision_race(monkeypatch):
    """The calibration's race of float32 against bfloat16 (tests/test_precision.py), as a float32 win."""
    monkeypatch.setattr(calibration, "_race_precisions", lambda: {"float32": 0.1, "bfloat16": None})


def _plan(h, w, config=CFG, budget_gib=8.0, coefficients=COEFFICIENTS, **kwargs):
    return planner.make_plan(
        (h, w),
        config,
        plan_scales(config, h, w),
        time_coefficients=coefficients,
        kind=kwargs.pop("kind", "CPU"),
        dtype=kwargs.pop("dtype", "float32"),
        budget=(int(budget_gib * GIB), "test budget"),
        memory=kwargs.pop("memory", "lean"),
        **kwargs,
    )


def test_each_scale_is_timed_with_its_own_optimiser():
    coefficients = {**COEFFICIENTS, "lbfgs_b": 2e-6, "adam_b": 0.5e-6, "adam_pyramid_b": 4e-6}

    def estimates(**changes):
        cfg = dataclasses.replace(CFG, max_size=1024, **changes)
        return [s.seconds for s in _plan(768, 1024, cfg, budget_gib=1000, coefficients=coefficients).scales]

    auto, lbfgs, adam = estimates(), estimates(optimizer="lbfgs"), estimates(optimizer="adam")
    assert len(auto) == 3
    # auto: the first scale as Adam on a pyramid (one evaluation a step, pyramid bookkeeping), the rest as L-BFGS
    assert auto[0] == pytest.approx(adam[0]) and auto[0] != pytest.approx(lbfgs[0])
    assert auto[1:] == pytest.approx(lbfgs[1:])
    px, steps = 192 * 256, StyleConfig().iterations_per_scale(3)[0]
    model = planner.CostModel.for_config(dataclasses.replace(CFG), "CPU", "float32", coefficients)
    assert model.first_driver_b == 4e-6 and model.driver_b == pytest.approx(2e-6)
    expected = lbfgs[0] - model.t_run(px, steps) + model.t_run(px, steps, first=True)
    assert auto[0] == pytest.approx(expected, rel=1e-3)


def test_memory_and_time_grow_with_size():
    peaks, times = [], []
    for side in (256, 512, 1024, 2048, 4096):
        p = _plan(side * 3 // 4, side, budget_gib=1000)
        assert p.fits and not any(s.tiled for s in p.scales)
        peaks.append(p.peak_bytes)
        times.append(p.seconds)
    assert all(a < b for a, b in zip(peaks, peaks[1:]))
    assert all(a < b for a, b in zip(times, times[1:]))
    # Memory is base + a cost per pixel: the largest scale's pixels dominate.
    assert (peaks[-1] - peaks[-2]) / (peaks[-2] - peaks[-3]) == pytest.approx(4.0, rel=0.05)


def test_the_lbfgs_history_counts_in_full_in_lean_memory():
    # The history pairs are float32 images alive through every evaluation (optimize._lbfgs): a
    # longer history must raise a lean plan's peak by 2 images (s, y) of 12 bytes a pixel per pair.
    h, w = 1536, 2048
    short, long = (_plan(h, w, dataclasses.replace(CFG, lbfgs_history=n), budget_gib=1000) for n in (5, 50))
    assert not any(s.tiled for s in short.scales + long.scales)
    assert long.peak_bytes - short.peak_bytes == pytest.approx(2 * 12 * 45 * h * w, rel=0.01)
    # The pooled model counts twice the live state (the figure its runs were measured against).
    short, long = (
        _plan(h, w, dataclasses.replace(CFG, lbfgs_history=n), budget_gib=1000, memory="pooled") for n in (5, 50)
    )
    assert long.peak_bytes - short.peak_bytes == pytest.approx(2 * 2 * 12 * 45 * h * w, rel=0.01)


def test_scales_that_do_not_fit_are_tiled_within_the_budget():
    p = _plan(3000, 4000, budget_gib=6.0)
    assert p.fits and p.peak_bytes <= planner.PLAN_SHARE * 6.0 * GIB
    tiled = [s for s in p.scales if s.tiled]
    assert tiled and tiled[-1] is p.scales[-1]
    assert not p.scales[0].tiled  # small scales stay whole
    last = p.scales[-1]
    assert last.grid.passes == 2 and last.steps_per_visit * 2 >= last.iterations
    assert last.grid.tile_h * last.grid.tile_w < 3000 * 4000
    # Untiled would not fit: the same size with a large budget needs more.
    assert _plan(3000, 4000, budget_gib=1000).peak_bytes > 6.0 * GIB
    # Tiling costs time: overlaps are optimised more than once.
    assert p.seconds > _plan(3000, 4000, budget_gib=1000).seconds


def test_forced_tile_size_tiles_every_scale_larger_than_it():
    cfg = dataclasses.replace(CFG, max_size=1024, min_size=256, tile_size=384)
    p = _plan(768, 1024, cfg, budget_gib=1000)
    assert [s.tiled for s in p.scales] == [False, True, True]
    assert all(max(s.grid.tile_h, s.grid.tile_w) <= 384 for s in p.scales if s.tiled)


def test_too_small_a_budget_says_so_and_offers_the_largest_size_that_fits():
    p = _plan(3000, 4000, budget_gib=1.3)
    assert not p.fits
    h, w = p.largest_fitting_size
    long_side = p.largest_fitting_max_size
    assert max(h, w) == long_side and abs(h / w - 0.75) < 0.01
    assert (
        f"the largest output that fits is {w}x{h} px (use --max-size {long_side} or raise --memory-limit)" in p.message
    )
    assert "but the memory budget is 1.3 GiB (test budget" in p.message and "4000x3000" in p.message
    # Content loaded at that size (what --max-size does) fits, and a little larger does not.
    assert _plan(h, w, budget_gib=1.3).fits
    assert not _plan(h + 48, w + 64, budget_gib=1.3).fits


def test_no_size_fits_below_the_base_memory():
    p = _plan(300, 400, budget_gib=0.5)
    assert not p.fits and p.largest_fitting_size is None
    assert "even the smallest output does not fit" in p.message


def test_stylize_refuses_a_run_that_cannot_fit_with_the_clear_message():
    # 1.2 GiB fits in neither allocator mode. (1.3 GiB fits in lean mode with tiles, which a
    # process can still switch to when TensorFlow has not started yet, e.g. this file run alone:
    # the test then ran the whole 2000x1500 stylization instead of being refused.)
    cfg = dataclasses.replace(CFG, memory_limit=1.2, max_size=0)
    with pytest.raises(ValueError, match=r"the largest output that fits is \d+x\d+ px \(use --max-size \d+"):
        nst_keras.stylize(np.zeros((1500, 2000, 3), np.uint8), [np.zeros((64, 64, 3), np.uint8)], cfg)


def test_engine_plan_is_json_friendly_and_complete():
    cfg = dataclasses.replace(CFG, memory_limit=3.0, max_size=2000)
    out = engine.plan((1500, 2000, 4), cfg, measure=False)
    assert json.loads(json.dumps(out)) == out
    for key in ("size", "fits", "est_seconds", "est_peak_bytes", "memory_budget_bytes", "scales"):
        assert key in out
    assert out["memory_budget_bytes"] == 3 * GIB and out["size"] == [1500, 2000]
    assert out["fits"] and out["est_peak_bytes"] <= 3 * GIB
    last = out["scales"][-1]
    assert last["tiled"] and len(last["tile_size"]) == 2 and last["passes"] == 2
    assert out["largest_fitting_size"] is None


def test_bfloat16_on_a_cpu_is_planned_with_measured_shares_of_float32_memory():
    """bfloat16 saves a tenth of a gradient evaluation's memory and none of a forward pass's (measured)."""
    f32 = planner.CostModel.for_config(CFG, "CPU", "float32", COEFFICIENTS)
    bf16 = planner.CostModel.for_config(CFG, "CPU", "bfloat16", COEFFICIENTS)
    assert bf16.fwd_bpp == pytest.approx(f32.fwd_bpp)  # the style Gram windows are as large as in float32
    assert bf16.net_bpp == pytest.approx(0.9 * f32.net_bpp)
    assert bf16.opt_bpp == f32.opt_bpp  # the L-BFGS state is float32 numpy arrays either way
    # 4000x3000 under 8 GiB: bfloat16 gets tiles at most 1/0.85 the size of float32's, not 1/0.6
    cfg = dataclasses.replace(CFG, max_size=0)
    tile = {}
    for dtype in ("float32", "bfloat16"):
        last = _plan(3000, 4000, cfg, dtype=dtype).scales[-1]
        assert last.tiled and last.peak_bytes <= 0.92 * 8 * GIB
        tile[dtype] = last.grid.tile_h * last.grid.tile_w
    assert tile["float32"] <= tile["bfloat16"] <= tile["float32"] / 0.85


def test_gpu_plans_budget_gpu_memory_with_the_measured_bytes_per_pixel():
    coefficients = {**COEFFICIENTS, "gpu_bpp": 2000.0}
    cfg = dataclasses.replace(CFG, max_size=4000)
    p = _plan(3000, 4000, cfg, budget_gib=10.0, coefficients=coefficients, kind="GPU", dtype="float16")
    assert p.fits and p.peak_bytes <= 10 * GIB
    assert p.scales[-1].tiled  # 12 Mpx x 2000 B > 10 GiB
    assert "est_host_peak_bytes" in p.to_dict()


def test_calibration_is_measured_once_then_read_from_the_cache(monkeypatch, tmp_path, no_precision_race):
    calls = []

    def fake_measure(config, dtype, gpu):
        calls.append((config.backbone, config.pooling, dtype))
        return {**planner.DEFAULT_TIME, "eval_b": 7e-6, "measured_s": 0.1}

    monkeypatch.setattr(calibration, "_measure", fake_measure)
    cfg = StyleConfig(weights="random")
    assert planner.calibrate(cfg, measure=False)["source"] == "default"
    assert calls == []
    first = planner.calibrate(cfg)
    assert first["source"] == "measured" and first["eval_b"] == 7e-6
    path = os.path.join(planner.cache_dir(), planner.CALIBRATION_FILE)
    with open(path, encoding="utf-8") as f:
        stored = json.load(f)
    timing_keys = [k for k in stored["entries"] if not k.startswith("precision|")]
    assert len(timing_keys) == 1 and "vgg19" in timing_keys[0]
    again = planner.calibrate(cfg)
    assert again["source"] == "cache" and again["eval_b"] == 7e-6 and len(calls) == 1
    assert planner.calibrate(cfg, measure=False)["source"] == "cache"
    assert planner.calibrate(cfg, refresh=True)["source"] == "measured" and len(calls) == 2
    calls.pop()
    # Another network setting is another entry.
    planner.calibrate(dataclasses.replace(cfg, pooling="avg"))
    assert len(calls) == 2
    # The plan uses the cached coefficients.
    assert engine.plan((96, 128), cfg, measure=False)["time_model"] == "cache"


def test_a_calibration_taken_on_a_busy_machine_is_measured_again_once_it_is_quiet(monkeypatch, no_precision_race):
    calls = []

    def fake_measure(config, dtype, gpu):
        calls.append(1)
        return {**planner.DEFAULT_TIME, "load_per_core": load["now"]}

    load = {"now": 3.0}
    monkeypatch.setattr(calibration, "_measure", fake_measure)
    monkeypatch.setattr(calibration, "_load_per_core", lambda: load["now"])
    cfg = StyleConfig(weights="random")
    assert planner.calibrate(cfg)["source"] == "measured"  # taken while busy (3 per core)
    assert planner.calibrate(cfg)["source"] == "cache" and len(calls) == 1  # still busy: no better now
    load["now"] = 0.2
    assert planner.calibrate(cfg, measure=False)["source"] == "cache"  # no measuring allowed: the old entry
    assert planner.calibrate(cfg)["source"] == "measured" and len(calls) == 2  # quiet: measured again
    assert planner.calibrate(cfg)["source"] == "cache" and len(calls) == 2  # a quiet entry is kept


def test_finished_runs_teach_the_time_model_a_correction_and_busy_or_short_runs_do_not(monkeypatch, no_precision_race):
    monkeypatch.setattr(calibration, "_measure", lambda config, dtype, gpu: {**planner.DEFAULT_TIME, "eval_b": 7e-6})
    load = {"now": 0.2}
    monkeypatch.setattr(calibration, "_load_per_core", lambda: load["now"])
    cfg = StyleConfig(weights="random")
    # Nothing measured yet: no entry to correct.
    assert planner.learn_from_run(cfg, 100.0, 150.0, 0.2) is None
    before = engine.plan((341, 512), cfg)
    assert before["time_model"] == "measured" and before["time_correction"] == 1.0
    # A run that took 1.5x its plan moves the correction half way (geometrically) toward 1.5.
    assert planner.learn_from_run(cfg, 100.0, 150.0, 0.2) == pytest.approx(1.5**0.5)
    after = engine.plan((341, 512), cfg, measure=False)
    assert after["time_model"] == "cache" and after["time_correction"] == pytest.approx(1.5**0.5, abs=1e-3)
    work = [s["est_seconds"] for s in before["scales"]], [s["est_seconds"] for s in after["scales"]]
    for b, a in zip(*work):
        assert a == pytest.approx(b * 1.5**0.5, rel=0.01, abs=0.1)
    setup = before["est_seconds"] - sum(work[0])
    assert after["est_seconds"] - sum(work[1]) == pytest.approx(setup, abs=0.2)  # the one-off setup is not scaled
    # Runs that keep taking 1.5x their (corrected) plan take the correction to 1.5.
    for _ in range(6):
        planned = 100.0 * calibration.run_time_scale(planner.calibrate(cfg, measure=False))
        planner.learn_from_run(cfg, planned, 150.0, 0.2)
    assert planner.calibrate(cfg, measure=False)["run_time_scale"] == pytest.approx(1.5, rel=0.02)
    learnt = planner.calibrate(cfg, measure=False)["run_time_scale"]
    # A busy machine (when the run started, or now), a short run: nothing learnt.
    assert planner.learn_from_run(cfg, 100.0, 300.0, 2.0) is None
    load["now"] = 2.0
    assert planner.learn_from_run(cfg, 100.0, 300.0, 0.2) is None
    load["now"] = 0.2
    assert planner.learn_from_run(cfg, 5.0, 50.0, 0.2) is None
    assert planner.calibrate(cfg, measure=False)["run_time_scale"] == learnt
    # A way-off run moves it at most to the bounds; a new measurement starts over.
    for _ in range(10):
        planner.learn_from_run(cfg, 100.0, 10000.0, 0.2)
    assert planner.calibrate(cfg, measure=False)["run_time_scale"] == cost.RUN_SCALE_BOUNDS[1]
    assert planner.calibrate(cfg, refresh=True).get("run_time_scale") is None


@pytest.mark.slow
def test_a_finished_engine_run_teaches_the_correction_to_its_calibration_entry(monkeypatch, no_precision_race):
    """The engine's own run (random weights, a small image) against a cached entry that predicts 10x too long."""
    cfg = StyleConfig(weights="random", max_size=96, iterations=4)
    coefficients = {**planner.DEFAULT_TIME, "eval_a": 2.0, "fwd_a": 1.0}  # seconds per call: far too slow
    monkeypatch.setattr(calibration, "_measure", lambda config, dtype, gpu: dict(coefficients))
    monkeypatch.setattr(calibration, "_load_per_core", lambda: 0.1)
    planned = engine.plan((72, 96), cfg)
    assert planned["time_model"] == "measured" and planned["time_correction"] == 1.0
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 255, (72, 96, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (64, 64, 3)).astype(np.float32)
    started = time.perf_counter()
    engine.stylize(content, style, cfg)
    took = time.perf_counter() - started
    learnt = planner.calibrate(cfg, measure=False)
    assert learnt["runs_learnt"] == 1 and learnt["run_time_scale"] < 1.0
    replanned = engine.plan((72, 96), cfg, measure=False)
    assert replanned["time_correction"] == pytest.approx(learnt["run_time_scale"], abs=1e-3)
    assert replanned["est_seconds"] < planned["est_seconds"] and took < planned["est_seconds"]


def test_a_broken_cache_file_is_measured_over(monkeypatch, no_precision_race):
    monkeypatch.setattr(calibration, "_measure", lambda config, dtype, gpu: dict(planner.DEFAULT_TIME))
    os.makedirs(planner.cache_dir(), exist_ok=True)
    with open(os.path.join(planner.cache_dir(), planner.CALIBRATION_FILE), "w") as f:
        f.write("{not json")
    assert planner.calibrate(StyleConfig(weights="random"))["source"] == "measured"


@pytest.mark.slow
def test_real_calibration_is_a_short_measurement_and_plausible(monkeypatch):
    # A short measurement, not an optimisation: counted in work (gradient evaluations and their
    # pixels), not in seconds, so a busy machine cannot fail it (about 15 s on a quiet 2-core CPU,
    # several minutes while other jobs share it); it catches a calibration that grew into real work.
    from nst_keras.gradient import Objective

    evaluated = []
    original = Objective.value_and_grad

    def counted(self, image, *args):
        evaluated.append(tuple(np.shape(image)[1:3]))
        return original(self, image, *args)

    monkeypatch.setattr(Objective, "value_and_grad", counted)
    out = planner.calibrate(StyleConfig(weights="random"))
    assert out["source"] == "measured"
    assert out["eval_b"] > 0 and out["fwd_b"] > 0 and out["eval_b"] > out["fwd_b"]
    largest = max(h * w for h, w in calibration.CAL_SIZES)
    assert evaluated and max(h * w for h, w in evaluated) <= largest
    # each size: one first (tracing) evaluation and CAL_REPEATS timed ones; the precision race (on a CPU
    # with bfloat16) adds a few evaluations of its own at a small size: at most as much again, with room
    own = (1 + calibration.CAL_REPEATS) * sum(h * w for h, w in calibration.CAL_SIZES)
    assert len(evaluated) <= 32 and sum(h * w for h, w in evaluated) <= 4 * own, evaluated


def test_runs_near_the_budget_ask_for_the_lean_allocator_and_a_pool_is_planned_with_room_to_grow():
    small, big = _plan(384, 512, budget_gib=8.0), _plan(3000, 4000, budget_gib=8.0)
    assert not planner.wants_lean(small)
    assert planner.wants_lean(big)
    assert not planner.wants_lean(_plan(3000, 4000, budget_gib=8.0, kind="GPU"))
    lean = _plan(3000, 4000, budget_gib=8.0, memory="lean")
    pooled = _plan(3000, 4000, budget_gib=8.0, memory="pooled")
    assert lean.memory_mode == "lean" and pooled.memory_mode == "pooled"
    tile = lambda p: p.scales[-1].grid.tile_h * p.scales[-1].grid.tile_w  # noqa: E731
    assert tile(pooled) < tile(lean)  # a pool may hold twice what is alive: smaller tiles
    assert pooled.peak_bytes <= planner.PLAN_SHARE * 8.0 * GIB


def test_lean_mode_is_refused_once_tensorflow_has_allocated(monkeypatch):
    monkeypatch.setattr(allocator, "_state", {"started": True, "lean": False})
    monkeypatch.delenv(planner.LEAN_ENV, raising=False)
    assert planner.use_lean_memory() is False and planner.allocator_mode() == "pooled"
    monkeypatch.setattr(allocator, "_state", {"started": False, "lean": None})
    monkeypatch.setenv(planner.LEAN_ENV, "0")  # the user's explicit choice wins
    assert planner.use_lean_memory() is False


def test_lean_mode_switch_before_tensorflow_starts():
    import subprocess
    import sys

    code = (
        "import os; from nst_keras import planner; "
        "assert planner.allocator_mode() == 'pooled'; assert planner.use_lean_memory(); "
        "assert os.environ[planner.LEAN_ENV] == '1' and planner.allocator_mode() == 'lean'; print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k != planner.LEAN_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_default_time_scales_with_the_network_size():
    reference = StyleConfig(content_layers=("block5_conv2",))  # the network DEFAULT_TIME was measured with
    vgg19 = planner.default_time(reference)
    vgg16 = planner.default_time(dataclasses.replace(reference, backbone="vgg16"))
    assert vgg19["eval_b"] == pytest.approx(planner.DEFAULT_TIME["eval_b"])
    assert 0.75 < vgg16["eval_b"] / vgg19["eval_b"] < 0.85
    # The default's deepest layer is block5_conv1 (content at block4_conv2): one conv layer less to run.
    assert 0.9 < planner.default_time(StyleConfig())["eval_b"] / vgg19["eval_b"] < 1.0


def test_the_planner_does_not_import_the_engine_and_the_schedule_imports_nothing():
    """The import direction CONTRIBUTING.md states: no cycle between the engine and the planner."""
    import ast
    import pathlib

    root = pathlib.Path(nst_keras.__file__).parent

    def imported(path):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:  # relative: from .x import y / from . import x
                names.add(node.module or "")
                names.update(alias.name for alias in node.names if not node.module)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nst_keras"):
                names.add(node.module.split(".", 1)[-1])
        return {n.split(".")[0] for n in names}

    for path in sorted((root / "planner").glob("*.py")):
        assert "engine" not in imported(path), f"{path.name} imports the engine"
    for name in ("schedule.py", "network.py"):
        assert imported(root / name) <= {"config"}, f"{name} imports {imported(root / name)}"
