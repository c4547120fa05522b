"""The GIMP plug-in's pure logic, without GIMP (its gi imports fail here, so only the logic loads).

These add to the real-GIMP tests in tests/gimp/, never replace them: the plug-in's copies of the
protocol constants and StyleConfig defaults agree with the engine, its command line is accepted
by the engine's own parser, progress text reads well, settings are read as documented, and its
engine runner starts, stops and escalates against a real process (tests/gimp/fake_engine.py).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import pytest

from nst_keras import config, protocol
from nst_keras.cli import build_parser, config_from_args

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "gimp_plugin" / "nst-keras" / "nst-keras.py"
FAKE_ENGINE = REPO / "tests" / "gimp" / "fake_engine.py"


@pytest.fixture(scope="module")
def plugin():
    spec = importlib.util.spec_from_file_location("nst_keras_gimp_plugin", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in the plug-in folder
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


def test_plugin_runs_in_gimps_python_without_extras():
    source = PLUGIN.read_text()
    assert source.startswith("#!/usr/bin/env python3\n")
    imports = [line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))]
    imports += [line.split()[1] for line in source.splitlines() if line.startswith(("    import ", "    from "))]
    allowed = {"gi", "gi.repository", "__future__"} | set(sys.stdlib_module_names)
    assert {name.split(".")[0] for name in imports} <= allowed, imports


def test_protocol_constants_match_the_engine(plugin):
    assert plugin.PROTOCOL_VERSION == protocol.PROTOCOL_VERSION
    for name in ("EXIT_OK", "EXIT_USER_ERROR", "EXIT_USAGE", "EXIT_UNEXPECTED", "EXIT_CANCELLED"):
        assert getattr(plugin, name) == getattr(protocol, name), name
    for name in ("STARTED", "PROGRESS", "PREVIEW", "DONE", "ERROR", "CANCELLED"):
        assert getattr(plugin, "EV_" + name) == getattr(protocol, name), name


def test_defaults_match_styleconfig(plugin):
    default = config.StyleConfig()
    for key, value in plugin.DEFAULTS.items():
        assert getattr(default, key) == value, key
    assert tuple(value for value, _, _ in plugin.QUALITY_CHOICES) == config.PRESETS
    assert tuple(value for value, _, _ in plugin.COLOUR_CHOICES) == ("off", *config.COLOR_MODES)
    assert set(plugin.ENGINE_INPUT_SUFFIXES) <= set(__import__("nst_keras.imageio").imageio.SUPPORTED_INPUT)


def test_style_strength_mapping(plugin):
    default = config.StyleConfig().style_weight
    assert plugin.style_weight_for_strength(plugin.STRENGTH_DEFAULT) == pytest.approx(default)
    weights = [plugin.style_weight_for_strength(s) for s in range(0, 101, 10)]
    assert weights == sorted(weights) and weights[0] > 0
    assert weights[-1] == pytest.approx(default * plugin.STRENGTH_RANGE)
    assert weights[0] == pytest.approx(default / plugin.STRENGTH_RANGE)
    for strength in (0.0, 12.5, 50.0, 99.0):
        weight = plugin.style_weight_for_strength(strength)
        assert plugin.strength_for_style_weight(weight) == pytest.approx(strength)


@pytest.mark.parametrize(
    "event,text",
    [
        (
            {"scale": 2, "num_scales": 3, "step": 140, "num_steps": 300, "eta_s": 65},
            "Scale 2/3 · step 140/300 · about 1 min left",
        ),
        ({"scale": 1, "num_scales": 1, "step": 3, "num_steps": 50, "eta_s": None}, "Step 3/50"),
        (
            {"scale": 1, "num_scales": 2, "step": 1, "num_steps": 60, "eta_s": 4},
            "Scale 1/2 · step 1/60 · a few seconds left",
        ),
        (
            {"scale": 3, "num_scales": 3, "step": 9, "num_steps": 10, "eta_s": 3 * 3600 + 20 * 60},
            "Scale 3/3 · step 9/10 · about 3 h 20 min left",
        ),
    ],
)
def test_progress_text(plugin, event, text):
    assert plugin.progress_text(event) == text


def test_format_eta(plugin):
    assert plugin.format_eta(None) == ""
    assert plugin.format_eta(float("nan")) == ""
    assert plugin.format_eta(-1) == ""
    assert plugin.format_eta(42) == "about 40 s left"
    assert plugin.format_eta(150) == "about 2 min left"
    assert plugin.format_eta(7200) == "about 2 h left"


def test_progress_fraction(plugin):
    frac = plugin.progress_fraction
    assert frac({"scale": 1, "num_scales": 2, "step": 0, "num_steps": 10}) == 0.0
    assert frac({"scale": 1, "num_scales": 2, "step": 10, "num_steps": 10}) == 0.5
    assert frac({"scale": 2, "num_scales": 2, "step": 5, "num_steps": 10}) == 0.75
    assert frac({"scale": 2, "num_scales": 2, "step": 10, "num_steps": 10}) == 1.0
    assert frac({"scale": "x"}) == 0.0
    assert frac({"scale": 9, "num_scales": 2, "step": 99, "num_steps": 10}) == 1.0


def test_settings(plugin, tmp_path):
    with pytest.raises(plugin.PluginError) as err:
        plugin.read_settings(str(tmp_path), {})
    assert str(err.value) == "nst-keras engine not installed: run install/install.py (or set NST_KERAS_PYTHON)"
    assert plugin.read_settings(str(tmp_path), {"NST_KERAS_PYTHON": "/x/python"}) == {
        "python": "/x/python",
        "command_prefix": [],
        "env": {},
        "tmpdir": None,
    }
    settings = {"python": "/venv/bin/python", "command_prefix": ["flatpak-spawn", "--host"], "env": {"A": 1}}
    (tmp_path / plugin.SETTINGS_FILE).write_text(json.dumps(settings))
    read = plugin.read_settings(str(tmp_path), {})
    assert read == {
        "python": "/venv/bin/python",
        "command_prefix": ["flatpak-spawn", "--host"],
        "env": {"A": "1"},
        "tmpdir": None,
    }
    assert plugin.read_settings(str(tmp_path), {"NST_KERAS_PYTHON": "/other"})["python"] == "/other"
    (tmp_path / plugin.SETTINGS_FILE).write_text("{not json")
    with pytest.raises(plugin.PluginError, match="cannot be read"):
        plugin.read_settings(str(tmp_path), {})
    (tmp_path / plugin.SETTINGS_FILE).write_text(json.dumps({"python": "p", "command_prefix": "flatpak-spawn"}))
    with pytest.raises(plugin.PluginError, match="command_prefix"):
        plugin.read_settings(str(tmp_path), {})


def test_engine_environment(plugin):
    base = {"PATH": "/usr/bin", "PYTHONPATH": "/gimp/python", "PYTHONHOME": "/gimp", "HOME": "/home/u"}
    env = plugin.engine_environment(base, {"NST_KERAS_WEIGHTS": "/w.h5"}, tmpdir="/tmp/nst-keras-x")
    assert "PYTHONPATH" not in env and "PYTHONHOME" not in env
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/home/u" and env["TMPDIR"] == "/tmp/nst-keras-x"
    assert env["NST_KERAS_WEIGHTS"] == "/w.h5" and env["PYTHONUNBUFFERED"] == "1"
    assert plugin.engine_environment(base, {"PYTHONPATH": "/src"})["PYTHONPATH"] == "/src"  # settings may set it


def plugin_options(plugin, **changes):
    options = {
        "preset": "normal",
        "max_size": 1024,
        "style_strength": 50.0,
        "style_weight": plugin.style_weight_for_strength(50.0),
        "style_scale": 1.0,
        "preserve_colors": None,
        "seed": None,
    }
    options.update(changes)
    return options


def engine_config(argv):
    """What the engine's own command-line parser makes of the plug-in's argv."""
    assert argv[1:3] == ["-m", "nst_keras"]
    args = build_parser().parse_args(argv[3:])
    return args, config_from_args(args).validate()


def test_argv_is_what_the_engine_expects(plugin):
    settings = {"python": "/venv/bin/python", "command_prefix": [], "env": {}}
    argv = plugin.build_argv(settings, "/t/content.png", "/t/style.png", "/t/out.png", plugin_options(plugin))
    args, cfg = engine_config(argv)
    assert args.json and not args.keep_partial and args.bit_depth == 8 and args.preview_every is None
    assert (args.content, args.styles, args.output) == ("/t/content.png", ["/t/style.png"], "/t/out.png")
    default = config.StyleConfig()
    for name in ("preset", "max_size", "style_scale", "preserve_colors", "seed"):
        assert getattr(cfg, name) == getattr(default, name), name
    assert cfg.style_weight == pytest.approx(default.style_weight)

    options = plugin_options(
        plugin, preset="high", max_size=0, style_weight=12.345678, style_scale=2.5, preserve_colors="histogram", seed=7
    )
    argv = plugin.build_argv(
        settings,
        "/t/c.png",
        "/t/s.png",
        "/t/o.png",
        options,
        bit_depth=16,
        keep_partial=True,
        preview=(10, "/t/preview.png"),
        extra="--iterations 2 --min-size 32",
    )
    args, cfg = engine_config(argv)
    assert args.keep_partial and args.bit_depth == 16 and args.preview_every == 10
    assert args.preview_path == "/t/preview.png"
    assert (cfg.preset, cfg.max_size, cfg.style_scale, cfg.preserve_colors, cfg.seed) == (
        "high",
        0,
        2.5,
        "histogram",
        7,
    )
    assert cfg.style_weight == pytest.approx(12.345678) and cfg.iterations == 2 and cfg.min_size == 32

    prefixed = plugin.build_argv(
        {"python": "python3", "command_prefix": ["flatpak-spawn", "--host"], "env": {}},
        "c.png",
        "s.png",
        "o.png",
        plugin_options(plugin, preserve_colors="luminance"),
    )
    assert prefixed[:5] == ["flatpak-spawn", "--host", "python3", "-m", "nst_keras"]
    assert prefixed[prefixed.index("--preserve-colors") + 1] == "luminance"


def test_flatpak_spawn_gets_environment_and_temp_folder(plugin):
    settings = {"python": "/home/u/.local/share/nst-keras/venv/bin/python"}
    settings.update(command_prefix=["flatpak-spawn", "--host"], env={"NST_KERAS_WEIGHTS": "/w.h5"})
    argv = plugin.build_argv(
        settings,
        "c.png",
        "s.png",
        "o.png",
        plugin_options(plugin),
        forward_env={"TMPDIR": "/home/u/.var/app/org.gimp.GIMP/cache/nst-keras/nst-keras-1", "A": "b c"},
        cwd="/home/u/.var/app/org.gimp.GIMP/cache/nst-keras/nst-keras-1",
    )
    assert argv[:6] == [
        "flatpak-spawn",
        "--host",
        "--env=TMPDIR=/home/u/.var/app/org.gimp.GIMP/cache/nst-keras/nst-keras-1",
        "--env=A=b c",
        "--directory=/home/u/.var/app/org.gimp.GIMP/cache/nst-keras/nst-keras-1",
        settings["python"],
    ]
    # The sandbox's /tmp is not the host's: the private folder goes to GIMP's cache folder.
    flatpak_env = {"XDG_CACHE_HOME": "/home/u/.var/app/org.gimp.GIMP/cache", "HOME": "/home/u"}
    assert plugin.temp_parent(settings, flatpak_env) == "/home/u/.var/app/org.gimp.GIMP/cache/nst-keras-tmp"
    assert plugin.temp_parent({"command_prefix": []}, flatpak_env) is None
    assert plugin.temp_parent({"command_prefix": [], "tmpdir": "/data/tmp"}, {}) == "/data/tmp"
    # Without flatpak-spawn, nothing is added: the engine inherits the environment and folder.
    plain = plugin.build_argv(
        {"python": "py", "command_prefix": [], "env": {}}, "c", "s", "o", plugin_options(plugin), forward_env={"A": "1"}
    )
    assert plain[0] == "py"


def test_format_number(plugin):
    assert plugin.format_number(5.0) == "5"
    assert plugin.format_number(0.5) == "0.5"
    assert plugin.format_number(1e-7) == "0"
    assert plugin.format_number(1234567.0) == "1234567"


def test_decode_event_and_log_tail(plugin, tmp_path):
    assert plugin.decode_event('{"event":"done","output":"x"}\n') == {"event": "done", "output": "x"}
    assert plugin.decode_event("2026-01-01 tensorflow chatter") is None
    assert plugin.decode_event('{"no":"event"}') is None
    assert plugin.decode_event("{broken") is None
    log = tmp_path / "engine.log"
    log.write_text("\n".join(f"line {i}" for i in range(30)) + "\n\n")
    assert plugin.log_tail(str(log)).splitlines() == [f"line {i}" for i in range(20, 30)]
    assert plugin.log_tail(str(tmp_path / "missing.log")) == ""


def test_failure_messages(plugin):
    error = {"event": "error", "type": "input", "message": "content image 'c.png' is damaged"}
    assert plugin.failure_message(1, error, "log") == "content image 'c.png' is damaged"
    crash = plugin.failure_message(3, None, "Traceback\nBoom")
    assert crash.startswith("The style transfer engine crashed (exit code 3)") and crash.endswith("Traceback\nBoom")
    assert "killed by signal 9" in plugin.failure_message(-9, None, "")
    assert "did not accept its command line" in plugin.failure_message(2, None, "usage: ...")
    assert "without producing a result" in plugin.failure_message(0, None, "")


# -- the engine runner against real processes -----------------------------------------------------


def fake_argv(tmp_path, *extra):
    out = tmp_path / "result.png"
    content = tmp_path / "content.png"
    if not content.exists():
        from PIL import Image

        Image.new("RGBA", (8, 6), (10, 200, 30, 255)).save(content)
    argv = [sys.executable, str(FAKE_ENGINE), "python", "-m", "nst_keras", str(content), str(content)]
    return [*argv, "-o", str(out), "--json", *extra]


def run_fake(plugin, tmp_path, mode, *extra, should_stop=None, grace=5.0):
    env = dict(os.environ, NST_FAKE_MODE=mode)
    engine = plugin.EngineRun(fake_argv(tmp_path, *extra), env, str(tmp_path / "engine.log"), cwd=str(tmp_path))
    events = []
    code = engine.run(on_event=events.append, pump=lambda: None, should_stop=should_stop, stop_grace_s=grace)
    return engine, code, events


def test_engine_run_done(plugin, tmp_path):
    engine, code, events = run_fake(
        plugin, tmp_path, "ok", "--preview-every", "2", "--preview-path", str(tmp_path / "p.png")
    )
    assert code == 0
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "done" and "progress" in kinds and "preview" in kinds
    assert engine.event("done")["output"].endswith("result.png") and (tmp_path / "result.png").exists()


def test_engine_run_error_and_crash(plugin, tmp_path):
    engine, code, _ = run_fake(plugin, tmp_path, "error")
    assert code == 1 and engine.event("error")["message"]
    engine, code, _ = run_fake(plugin, tmp_path, "crash")
    assert code == 3 and "Traceback" in plugin.log_tail(engine.log_path)


def test_engine_run_stop_keeps_partial(plugin, tmp_path):
    start = time.monotonic()
    engine, code, _ = run_fake(
        plugin, tmp_path, "slow", "--keep-partial", should_stop=lambda: time.monotonic() - start > 1.0
    )
    assert code == 130 and engine.stop_requested
    assert engine.event("cancelled")["output"].endswith("result.png") and (tmp_path / "result.png").exists()
    assert time.monotonic() - start < 5


def test_engine_run_escalates_to_kill(plugin, tmp_path):
    """An engine that ignores stdin EOF and SIGTERM is killed after the grace periods."""
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import signal, sys, time, json\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print(json.dumps({'event': 'started'}), flush=True)\n"
        "while True:\n    time.sleep(0.1)\n"
    )
    engine = plugin.EngineRun([sys.executable, str(script)], dict(os.environ), str(tmp_path / "e.log"))
    plugin_kill_grace = plugin.KILL_GRACE_S
    plugin.KILL_GRACE_S = 0.5
    try:
        start = time.monotonic()
        code = engine.run(should_stop=lambda: time.monotonic() - start > 0.5, stop_grace_s=0.5)
    finally:
        plugin.KILL_GRACE_S = plugin_kill_grace
    assert code == -9
    assert time.monotonic() - start < 10


def test_engine_run_missing_interpreter(plugin, tmp_path):
    engine = plugin.EngineRun(["/nonexistent/python", "-m", "nst_keras"], {}, str(tmp_path / "e.log"))
    with pytest.raises(plugin.PluginError, match="could not be started"):
        engine.run()


def test_engine_run_stops_engine_when_the_plugin_fails(plugin, tmp_path):
    """An exception in an event handler must not leave the engine running."""

    def boom(event):
        if event["event"] == "progress":
            raise RuntimeError("handler failed")

    env = dict(os.environ, NST_FAKE_MODE="slow")
    engine = plugin.EngineRun(fake_argv(tmp_path), env, str(tmp_path / "e.log"))
    with pytest.raises(RuntimeError):
        engine.run(on_event=boom)
    assert engine.proc.poll() is not None


def test_plugin_procedure_names_documented(plugin):
    assert plugin.PROCEDURE_NAME == "python-fu-nst-keras"
    assert plugin.result_layer_name("Starry") == "Styled: Starry"
    assert "NST_KERAS_EXTRA_ARGS" in PLUGIN.read_text()


def test_defaults_cover_every_dialog_setting(plugin):
    names = {f.name for f in dataclasses.fields(config.StyleConfig)}
    assert set(plugin.DEFAULTS) <= names
    record = plugin.settings_record(plugin_options(plugin), "Starry", "0.1.0")
    json.dumps(record)
    assert record["style"] == "Starry" and record["style_weight"] == pytest.approx(plugin.DEFAULTS["style_weight"])


def test_plugin_file_compiles_with_gimps_python_version():
    # GIMP 3.0 builds ship various Pythons (3.9 and newer): no syntax newer than 3.9.
    import ast

    ast.parse(PLUGIN.read_text(), str(PLUGIN), feature_version=(3, 9))
