"""schedule.py: the output size, the coarse-to-fine scales, the iterations per scale and the size limits."""

import pytest

from nst_keras import schedule
from nst_keras.config import StyleConfig
from nst_keras.schedule import (
    LARGE_SIDE,
    MAX_STYLE_SIDE,
    MIN_LARGE_ITERATIONS,
    MIN_SIDE,
    PRESET_ITERATIONS,
    fit_long_side,
    iterations_per_scale,
    large_scale_iterations,
    plan_scales,
    scale_sizes,
    style_size,
    target_size,
)


def test_scales_double_up_to_the_capped_target():
    cfg = StyleConfig(max_size=1024, min_size=256)
    assert cfg.target_size(3000, 4000) == (768, 1024)
    assert cfg.scales(3000, 4000) == [(192, 256), (384, 512), (768, 1024)]
    assert cfg.scales(100, 200) == [(100, 200)]  # smaller than min_size: one scale, own size
    assert StyleConfig(max_size=0).target_size(3000, 4000) == (3000, 4000)


@pytest.mark.parametrize(
    "hw, long_side, expected",
    [
        ((3000, 4000), 1024, (768, 1024)),
        ((4000, 3000), 1024, (1024, 768)),  # portrait: the height is the long side
        ((333, 1000), 500, (166, 500)),  # 166.5 rounds to the even neighbour (Python's round)
        ((335, 1000), 500, (168, 500)),  # 167.5 rounds to 168
        ((1, 10_000), 100, (1, 100)),  # never below one pixel
        ((64, 64), 64, (64, 64)),
        ((100, 50), 250.0, (250, 125)),  # enlarging (the style image at style_scale > 1)
    ],
)
def test_fit_long_side_rounds_to_the_nearest_pixel_and_keeps_one(hw, long_side, expected):
    assert fit_long_side(*hw, long_side) == expected


def test_target_size_caps_only_larger_images():
    assert target_size(600, 800, 1024) == (600, 800)  # smaller: its own size, never enlarged
    assert target_size(1024, 800, 1024) == (1024, 800)  # exactly at the cap
    assert target_size(1025, 800, 1024) == (1024, 799)
    assert target_size(3000, 4000, 0) == (3000, 4000)  # 0: no cap


def test_scale_sizes_edge_cases():
    # Exactly min_size: one scale; one pixel more: two scales, the first at half size.
    assert scale_sizes(256, 256, 1024, 256) == [(256, 256)]
    assert scale_sizes(257, 257, 1024, 256) == [(128, 128), (257, 257)]
    # A power-of-two ratio gives exact halves (no extra scale for float error).
    assert scale_sizes(512, 1024, 0, 256) == [(128, 256), (256, 512), (512, 1024)]
    # Every scale keeps the target's aspect ratio within a pixel, and the last is the target.
    sizes = scale_sizes(1362, 2048, 0, 256)
    assert sizes[-1] == (1362, 2048) and len(sizes) == 4
    for h, w in sizes:
        assert abs(h / w - 1362 / 2048) * w <= 1.0


def test_preset_iterations_decrease_with_scale_and_iterations_override():
    its = StyleConfig(preset="normal").iterations_per_scale(3)
    assert its[0] > its[1] > its[2] > 0
    assert (
        StyleConfig(preset="draft").iterations_per_scale(3)[0]
        < its[0]
        < StyleConfig(preset="high").iterations_per_scale(3)[0]
    )
    assert StyleConfig(iterations=7).iterations_per_scale(3) == [7, 7, 7]


@pytest.mark.parametrize("preset", sorted(PRESET_ITERATIONS))
def test_preset_schedule_runs_from_first_to_last_geometrically(preset):
    first, last = PRESET_ITERATIONS[preset]
    assert iterations_per_scale(1, preset) == [first]  # one scale: the first scale's count
    assert iterations_per_scale(2, preset) == [first, last]
    middle = iterations_per_scale(3, preset)[1]
    assert middle == round((first * last) ** 0.5)  # the geometric mean


@pytest.mark.parametrize("preset", sorted(PRESET_ITERATIONS))
@pytest.mark.parametrize("long_side", [256, 384, 512, 1000, LARGE_SIDE])
def test_outputs_up_to_the_large_side_keep_the_preset_schedule(preset, long_side):
    cfg = StyleConfig(max_size=0, preset=preset)
    sched = plan_scales(cfg, round(long_side * 2 / 3), long_side)
    assert [n for _, _, n in sched] == iterations_per_scale(len(sched), preset)


def test_scales_beyond_the_large_side_get_fewer_steps_at_each_doubling():
    cfg = StyleConfig(max_size=0)  # normal: 150 .. 50
    sched = plan_scales(cfg, 3000, 4000)
    assert [max(h, w) for h, w, _ in sched] == [250, 500, 1000, 2000, 4000]
    before = iterations_per_scale(5, "normal")
    assert before == [150, 114, 87, 66, 50]
    assert [n for _, _, n in sched] == [150, 114, 87, 29, 17]  # 50 x 0.577 per doubling beyond 1024 px
    work_before = sum(h * w * n for (h, w, _), n in zip(sched, before))
    work_after = sum(h * w * n for h, w, n in sched)
    assert work_after < 0.45 * work_before  # 0.43: the full-size scale was three quarters of the work
    # the first doubling beyond: 50 -> 29 at 2048 px for every output that reaches it
    assert plan_scales(cfg, 1365, 2048)[-1][2] == 29
    # just above the large side a gentle cut, never more steps than before
    assert 40 <= plan_scales(cfg, 800, 1200)[-1][2] < iterations_per_scale(4, "normal")[-1]


@pytest.mark.parametrize("preset", sorted(PRESET_ITERATIONS))
def test_large_scale_steps_have_a_floor_and_never_grow(preset):
    sizes = [(188 * 2**k, 250 * 2**k) for k in range(7)]  # up to 16000 px
    before = iterations_per_scale(len(sizes), preset)
    after = large_scale_iterations(sizes, before, preset)
    assert all(a <= b for a, b in zip(after, before))
    assert all(a >= min(b, MIN_LARGE_ITERATIONS) for a, b in zip(after, before))
    beyond = [a for (h, w), a in zip(sizes, after) if max(h, w) > LARGE_SIDE]
    assert beyond == sorted(beyond, reverse=True) and beyond[-1] >= MIN_LARGE_ITERATIONS
    if preset == "draft":  # 20 x 0.577 per doubling reaches the floor at 4000 px
        assert beyond[-3:] == [MIN_LARGE_ITERATIONS] * 3
    # a higher preset keeps at least as many steps at every scale
    presets = sorted(PRESET_ITERATIONS, key=lambda p: PRESET_ITERATIONS[p])
    if preset != presets[-1]:
        richer = presets[presets.index(preset) + 1]
        more = large_scale_iterations(sizes, iterations_per_scale(len(sizes), richer), richer)
        assert all(m >= a for m, a in zip(more, after))


def test_explicit_iterations_apply_at_every_scale_however_large():
    sched = plan_scales(StyleConfig(max_size=0, iterations=40), 3000, 4000)
    assert [n for _, _, n in sched] == [40] * 5


def test_config_reads_the_presets_table_that_bench_patches():
    # bench/common.py patches config.PRESET_ITERATIONS in place: it must be the schedule's own table.
    from nst_keras import config

    assert config.PRESET_ITERATIONS is schedule.PRESET_ITERATIONS
    assert config.PRESETS == tuple(PRESET_ITERATIONS)


def test_thin_scales_are_dropped_and_impossible_strips_refused():
    # 1024x64: the 256-px first scale would be 16 px high, too small for the network.
    sched = plan_scales(StyleConfig(max_size=1024, min_size=256), 64, 1024)
    assert all(min(h, w) >= MIN_SIDE for h, w, _ in sched)
    assert sched[-1][:2] == (64, 1024)
    with pytest.raises(ValueError, match="aspect ratio is too extreme"):
        plan_scales(StyleConfig(max_size=1024), 20, 20000)


def test_plan_scales_at_the_minimum_side():
    # A short side of exactly MIN_SIDE at the output is accepted; one pixel less is refused.
    assert plan_scales(StyleConfig(max_size=0, min_size=256), MIN_SIDE, 400)[-1][:2] == (MIN_SIDE, 400)
    with pytest.raises(ValueError, match=rf"output size 400x{MIN_SIDE - 1}.*below {MIN_SIDE} pixels"):
        plan_scales(StyleConfig(max_size=0), MIN_SIDE - 1, 400)
    # Every scale dropped but the last: one scale, with the first scale's iteration count.
    only = plan_scales(StyleConfig(max_size=0, min_size=64, preset="draft"), 40, 400)
    assert only == [(40, 400, PRESET_ITERATIONS["draft"][0])]


def test_plan_scales_pairs_sizes_with_iterations():
    cfg = StyleConfig(max_size=1024, min_size=256, preset="normal")
    sched = plan_scales(cfg, 3000, 4000)
    assert [s[:2] for s in sched] == cfg.scales(3000, 4000)
    assert [s[2] for s in sched] == cfg.iterations_per_scale(3)


def test_style_size_follows_the_scale_and_is_capped():
    assert style_size((300, 400), (192, 256), 1.0) == (192, 256)
    assert style_size((400, 300), (192, 256), 2.0) == (512, 384)  # style_scale 2: twice the scale's long side
    assert style_size((1000, 1000), (3000, 4000), 2.0) == (MAX_STYLE_SIDE, MAX_STYLE_SIDE)


def test_engine_and_resize_keep_the_old_import_paths():
    from nst_keras import engine, resize

    assert engine.plan_scales is plan_scales and engine.MIN_SIDE == MIN_SIDE
    assert engine.MAX_STYLE_SIDE == MAX_STYLE_SIDE and resize.fit_long_side is fit_long_side
