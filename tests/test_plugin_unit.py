"""The GIMP plug-in's pure logic, without GIMP (its gi imports fail here, so only the logic loads).

These add to the real-GIMP tests in tests/gimp/, never replace them: the plug-in takes the protocol
from the engine's own module (no copy), its OPTIONS table agrees with StyleConfig and its command
line is accepted by the engine's own parser, progress text reads well, settings are read as
documented, and its engine client starts, stops, escalates and notices a hung engine against real
processes (tests/gimp/fake_engine.py). The modules are imported from a folder made by the tests'
install_plugin, as GIMP sees it (with protocol.py copied in).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from nst_keras import config, protocol
from nst_keras.cli import build_parser, config_from_args

REPO = Path(__file__).resolve().parent.parent
PLUGIN_DIR = REPO / "gimp_plugin" / "nst-keras"
FAKE_ENGINE = REPO / "tests" / "gimp" / "fake_engine.py"
sys.path.insert(0, str(REPO / "tests" / "gimp"))
import gimproot  # noqa: E402

MODULES = ("nst_options", "nst_engine")  # the modules that load without GIMP


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return gimproot.install_plugin(tmp_path_factory.mktemp("gimp-profile"), None)


@pytest.fixture(scope="module")
def plugin(installed):
    saved_path, saved_flag = list(sys.path), sys.dont_write_bytecode
    sys.path.insert(0, str(installed))
    sys.dont_write_bytecode = True  # no __pycache__ in the plug-in folder
    for name in (*MODULES, "protocol"):
        sys.modules.pop(name, None)
    try:
        modules = {name: importlib.import_module(name) for name in MODULES}
        modules["protocol"] = sys.modules["protocol"]
    finally:
        sys.path[:] = saved_path
        sys.dont_write_bytecode = saved_flag
    for name in (*MODULES, "protocol"):
        sys.modules.pop(name, None)  # never shadow anything else in this process
    return SimpleNamespace(options=modules["nst_options"], engine=modules["nst_engine"], protocol=modules["protocol"])


def plugin_sources():
    return sorted(PLUGIN_DIR.glob("*.py"))


def test_plugin_runs_in_gimps_python_without_extras():
    assert (PLUGIN_DIR / "nst-keras.py").read_text().startswith("#!/usr/bin/env python3\n")
    own = {p.stem for p in plugin_sources()} | {"protocol"}
    allowed = {"gi", "__future__"} | set(sys.stdlib_module_names) | own
    for path in plugin_sources():
        tree = ast.parse(path.read_text(), str(path), feature_version=(3, 9))  # GIMP 3.0 ships Python 3.9+
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names.add(node.module.split(".")[0])
        assert names <= allowed, (path.name, names - allowed)


def test_protocol_is_the_engines_own_module(plugin, installed):
    """No hand copy: the plug-in reads the engine's protocol.py that the installer copies in."""
    assert not (PLUGIN_DIR / "protocol.py").exists()
    assert (installed / "protocol.py").read_bytes() == Path(protocol.__file__).read_bytes()
    assert plugin.engine.protocol.__file__ == str(installed / "protocol.py")
    for path in plugin_sources():
        tree = ast.parse(path.read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets if hasattr(t, "id")}
        copies = (defined | assigned) & {"decode_event", "PROTOCOL_VERSION", "EXIT_OK", "EXIT_CANCELLED", "DONE"}
        assert not copies, (path.name, copies)
    # the event names the plug-in handles are the engine's
    source = (PLUGIN_DIR / "nst_stylize.py").read_text() + (PLUGIN_DIR / "nst_engine.py").read_text()
    used = {
        name
        for name in ("PHASE", "HEARTBEAT", "NOTICE", "STARTED", "PROGRESS", "PREVIEW")
        if f"protocol.{name}" in source
    }
    assert used == {"PHASE", "HEARTBEAT", "NOTICE", "STARTED", "PROGRESS", "PREVIEW"}
    assert all(getattr(protocol, name) in protocol.EVENTS for name in used)


def test_defaults_match_styleconfig(plugin):
    opts = plugin.options
    default = config.StyleConfig()
    for key, value in opts.DEFAULTS.items():
        assert getattr(default, key) == value, key
    assert tuple(value for value, _, _ in opts.QUALITY_CHOICES) == config.PRESETS
    assert tuple(value for value, _, _ in opts.LOOK_CHOICES) == tuple(config.LOOKS)
    assert set(plugin_layers_suffixes()) <= set(__import__("nst_keras.imageio").imageio.SUPPORTED_INPUT)
    # every option's default gives StyleConfig's default
    engine = opts.engine_options(opts.default_values())
    for key, value in engine.items():
        assert getattr(default, key) == value, key


def plugin_layers_suffixes():
    tree = ast.parse((PLUGIN_DIR / "nst_layers.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ENGINE_INPUT_SUFFIXES":
            return ast.literal_eval(node.value)
    raise AssertionError("nst_layers.ENGINE_INPUT_SUFFIXES is missing")


def test_options_table_is_the_one_place(plugin):
    """Every row is a PDB argument with a label and help, a dialog frame, and (with a key) a StyleConfig field."""
    opts = plugin.options
    fields = {f.name for f in dataclasses.fields(config.StyleConfig)}
    names = [o.name for o in opts.OPTIONS]
    assert len(names) == len(set(names))
    groups = {g for g, _ in opts.GROUPS}
    parser_flags = {flag for action in build_parser()._actions for flag in action.option_strings}
    for option in opts.OPTIONS:
        assert option.kind in ("choice", "int", "double", "boolean") and option.label and option.help
        assert option.group in groups, option.name
        assert (option.key is None) == (option.flag is None), option.name
        if option.key is not None:
            assert option.key in fields and option.flag in parser_flags, option.name
    assert sum(len(opts.group_names(g)) for g in groups) == len(names)


def test_plain_words_in_the_dialog(plugin):
    labels = {o.name: o.label.replace("_", "") for o in plugin.options.OPTIONS}
    assert labels["keep-colours"] == "Keep the photo's colours"
    assert labels["style-scale"] == "Brush-stroke size"
    assert labels["same-result"] == "Same result every time" and labels["variation"] == "Variation"
    text = " ".join(o.label + " " + o.help for o in plugin.options.OPTIONS).lower()
    for jargon in ("seed", "random", "-1", "pattern size", "iterations", "gram"):
        assert jargon not in text, jargon


def test_registration_follows_the_table(plugin):
    """add_arguments makes one PDB argument per row with the row's kind, range and default."""
    calls = []

    class Procedure:
        def __getattr__(self, name):
            return lambda *args: calls.append((name, args))

    class Choice:
        def __init__(self):
            self.values = []

        def add(self, value, *_):
            self.values.append(value)

    gimp = SimpleNamespace(Choice=SimpleNamespace(new=Choice))
    gobject = SimpleNamespace(ParamFlags=SimpleNamespace(READWRITE=3))
    plugin.options.add_arguments(Procedure(), gimp, gobject)
    assert [args[0] for _, args in calls] == [o.name for o in plugin.options.OPTIONS]
    by_name = dict((args[0], (kind, args)) for kind, args in calls)
    assert by_name["max-size"] == (
        "add_int_argument",
        ("max-size", "_Working size (pixels)", by_name["max-size"][1][2], 0, 16384, 1024, 3),
    )
    kind, args = by_name["quality"]
    assert kind == "add_choice_argument" and args[3].values == list(config.PRESETS) and args[4] == "normal"
    kind, args = by_name["balance"]
    assert kind == "add_choice_argument" and args[3].values == list(config.LOOKS) and args[4] == "photo"
    assert by_name["keep-colours"][0] == "add_boolean_argument" and by_name["keep-colours"][1][3] is False


def test_style_strength_is_the_engines_strength(plugin):
    """The slider is StyleConfig.strength itself: the engine maps it (monotone, tested in test_strength.py)."""
    row = next(o for o in plugin.options.OPTIONS if o.name == "style-strength")
    assert (row.key, row.flag, row.minimum, row.maximum) == ("strength", "--strength", 0.0, 100.0)
    assert plugin.options.STRENGTH_DEFAULT == config.StyleConfig().strength
    weights = []
    for strength in (0.0, 12.5, 50.0, 99.0, 100.0):
        engine = plugin.options.engine_options(dict(plugin.options.default_values(), **{"style-strength": strength}))
        assert engine["strength"] == strength
        weights.append(config.StyleConfig(strength=strength).effective_style_weight())
    assert weights == sorted(weights) and weights[0] > 0


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
    assert plugin.engine.progress_text(event) == text


def test_format_eta(plugin):
    assert plugin.engine.format_eta(None) == ""
    assert plugin.engine.format_eta(float("nan")) == ""
    assert plugin.engine.format_eta(-1) == ""
    assert plugin.engine.format_eta(42) == "about 40 s left"
    assert plugin.engine.format_eta(150) == "about 2 min left"
    assert plugin.engine.format_eta(7200) == "about 2 h left"


def test_progress_fraction(plugin):
    frac = plugin.engine.progress_fraction
    assert frac({"scale": 1, "num_scales": 2, "step": 0, "num_steps": 10}) == 0.0
    assert frac({"scale": 1, "num_scales": 2, "step": 10, "num_steps": 10}) == 0.5
    assert frac({"scale": 2, "num_scales": 2, "step": 5, "num_steps": 10}) == 0.75
    assert frac({"scale": 2, "num_scales": 2, "step": 10, "num_steps": 10}) == 1.0
    assert frac({"scale": "x"}) == 0.0
    assert frac({"scale": 9, "num_scales": 2, "step": 99, "num_steps": 10}) == 1.0


def test_settings(plugin, tmp_path):
    with pytest.raises(plugin.engine.PluginError) as err:
        plugin.engine.read_settings(str(tmp_path), {})
    assert str(err.value) == "nst-keras engine not installed: run install/install.py (or set NST_KERAS_PYTHON)"
    assert plugin.engine.read_settings(str(tmp_path), {"NST_KERAS_PYTHON": "/x/python"}) == {
        "python": "/x/python",
        "command_prefix": [],
        "env": {},
        "tmpdir": None,
        "hang_timeout_s": 60.0,
    }
    settings = {"python": "/venv/bin/python", "command_prefix": ["flatpak-spawn", "--host"], "env": {"A": 1}}
    (tmp_path / plugin.engine.SETTINGS_FILE).write_text(json.dumps(settings))
    read = plugin.engine.read_settings(str(tmp_path), {})
    assert read == {
        "python": "/venv/bin/python",
        "command_prefix": ["flatpak-spawn", "--host"],
        "env": {"A": "1"},
        "tmpdir": None,
        "hang_timeout_s": 60.0,
    }
    assert plugin.engine.read_settings(str(tmp_path), {"NST_KERAS_PYTHON": "/other"})["python"] == "/other"
    (tmp_path / plugin.engine.SETTINGS_FILE).write_text("{not json")
    with pytest.raises(plugin.engine.PluginError, match="cannot be read"):
        plugin.engine.read_settings(str(tmp_path), {})
    (tmp_path / plugin.engine.SETTINGS_FILE).write_text(json.dumps({"python": "p", "hang_timeout_s": 2}))
    assert plugin.engine.read_settings(str(tmp_path), {})["hang_timeout_s"] == 2.0
    (tmp_path / plugin.engine.SETTINGS_FILE).write_text(json.dumps({"python": "p", "hang_timeout_s": "soon"}))
    with pytest.raises(plugin.engine.PluginError, match="hang_timeout_s"):
        plugin.engine.read_settings(str(tmp_path), {})
    (tmp_path / plugin.engine.SETTINGS_FILE).write_text(json.dumps({"python": "p", "command_prefix": "flatpak-spawn"}))
    with pytest.raises(plugin.engine.PluginError, match="command_prefix"):
        plugin.engine.read_settings(str(tmp_path), {})


def test_engine_environment(plugin):
    base = {"PATH": "/usr/bin", "PYTHONPATH": "/gimp/python", "PYTHONHOME": "/gimp", "HOME": "/home/u"}
    env = plugin.engine.engine_environment(base, {"NST_KERAS_WEIGHTS": "/w.h5"}, tmpdir="/tmp/nst-keras-x")
    assert "PYTHONPATH" not in env and "PYTHONHOME" not in env
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/home/u" and env["TMPDIR"] == "/tmp/nst-keras-x"
    assert env["NST_KERAS_WEIGHTS"] == "/w.h5" and env["PYTHONUNBUFFERED"] == "1"
    assert plugin.engine.engine_environment(base, {"PYTHONPATH": "/src"})["PYTHONPATH"] == "/src"  # settings may set it


def values(plugin, **changes):
    """The dialog's values: the defaults with some changed (names with '_' for '-')."""
    out = plugin.options.default_values()
    out.update({key.replace("_", "-"): value for key, value in changes.items()})
    return out


def argv_for(plugin, settings, content, style, output, dialog_values, **kwargs):
    return plugin.engine.build_argv(
        settings, content, style, output, plugin.options.engine_args(dialog_values), **kwargs
    )


def engine_config(argv):
    """What the engine's own command-line parser makes of the plug-in's argv."""
    assert argv[1:3] == ["-m", "nst_keras"]
    args = build_parser().parse_args(argv[3:])
    return args, config_from_args(args).validate()


def test_argv_is_what_the_engine_expects(plugin):
    settings = {"python": "/venv/bin/python", "command_prefix": [], "env": {}}
    argv = argv_for(plugin, settings, "/t/content.png", "/t/style.png", "/t/out.png", values(plugin))
    assert "--stop-on-eof" in argv  # the plug-in's first way to stop the engine: close its stdin
    args, cfg = engine_config(argv)
    assert args.json and not args.keep_partial and args.bit_depth == 8 and args.preview_every is None
    assert (args.content, args.styles, args.output) == ("/t/content.png", ["/t/style.png"], "/t/out.png")
    default = config.StyleConfig()
    for name in ("look", "preset", "max_size", "style_scale", "preserve_colors", "seed"):
        assert getattr(cfg, name) == getattr(default, name), name
    assert cfg.strength == default.strength and cfg.style_weight == default.style_weight

    changed = values(
        plugin,
        quality="high",
        balance="painterly",
        max_size=0,
        style_strength=37.5,
        style_scale=2.5,
        keep_colours=True,
        same_result=True,
        variation=7,
    )
    argv = argv_for(
        plugin,
        settings,
        "/t/c.png",
        "/t/s.png",
        "/t/o.png",
        changed,
        bit_depth=16,
        keep_partial=True,
        preview=(10, "/t/previews"),
        extra="--iterations 2 --min-size 32",
    )
    assert argv[argv.index("--preview-dir") + 1] == "/t/previews" and "--preview-path" not in argv
    args, cfg = engine_config([a for a in argv if a not in ("--preview-dir", "/t/previews")])
    assert args.keep_partial and args.bit_depth == 16 and args.preview_every == 10
    assert (cfg.preset, cfg.max_size, cfg.style_scale, cfg.preserve_colors, cfg.seed) == (
        "high",
        0,
        2.5,
        "luminance",
        7,
    )
    assert cfg.strength == 37.5 and cfg.iterations == 2 and cfg.min_size == 32
    assert (
        cfg.look == "painterly"
        and cfg.style_layer_weight_map() == config.StyleConfig(look="painterly").style_layer_weight_map()
    )
    # "Same result every time" off: the variation number is not passed
    argv = argv_for(plugin, settings, "c", "s", "o", values(plugin, variation=7))
    assert "--seed" not in argv

    prefixed = argv_for(
        plugin,
        {"python": "python3", "command_prefix": ["flatpak-spawn", "--host"], "env": {}},
        "c.png",
        "s.png",
        "o.png",
        values(plugin, keep_colours=True),
    )
    assert prefixed[:6] == ["flatpak-spawn", "--host", "--watch-bus", "python3", "-m", "nst_keras"]
    assert prefixed[prefixed.index("--preserve-colors") + 1] == "luminance"


def test_flatpak_spawn_gets_environment_and_temp_folder(plugin):
    settings = {"python": "/home/u/.local/share/nst-keras/venv/bin/python"}
    settings.update(command_prefix=["flatpak-spawn", "--host"], env={"NST_KERAS_WEIGHTS": "/w.h5"})
    argv = argv_for(
        plugin,
        settings,
        "c.png",
        "s.png",
        "o.png",
        values(plugin),
        forward_env={"TMPDIR": "/home/u/.var/app/org.gimp.GIMP/cache/nst-keras/nst-keras-1", "A": "b c"},
        cwd="/home/u/.var/app/org.gimp.GIMP/cache/nst-keras/nst-keras-1",
    )
    assert argv[:7] == [
        "flatpak-spawn",
        "--host",
        "--watch-bus",  # a kill of flatpak-spawn also ends the engine on the host
        "--env=TMPDIR=/home/u/.var/app/org.gimp.GIMP/cache/nst-keras/nst-keras-1",
        "--env=A=b c",
        "--directory=/home/u/.var/app/org.gimp.GIMP/cache/nst-keras/nst-keras-1",
        settings["python"],
    ]
    # The sandbox's /tmp is not the host's: the private folder goes to GIMP's cache folder.
    flatpak_env = {"XDG_CACHE_HOME": "/home/u/.var/app/org.gimp.GIMP/cache", "HOME": "/home/u"}
    assert plugin.engine.temp_parent(settings, flatpak_env) == "/home/u/.var/app/org.gimp.GIMP/cache/nst-keras-tmp"
    assert plugin.engine.temp_parent({"command_prefix": []}, flatpak_env) is None
    assert plugin.engine.temp_parent({"command_prefix": [], "tmpdir": "/data/tmp"}, {}) == "/data/tmp"
    # Without flatpak-spawn, nothing is added: the engine inherits the environment and folder.
    plain = argv_for(plugin, {"python": "py", "command_prefix": [], "env": {}}, "c", "s", "o", values(plugin))
    assert plain[0] == "py"


def test_unwritable_temp_folder_is_one_sentence(plugin, tmp_path):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    settings = {"command_prefix": [], "tmpdir": str(blocked / "sub")}
    with pytest.raises(plugin.engine.PluginError) as err:
        plugin.engine.make_temp_folder(settings, {})
    message = str(err.value)
    assert str(blocked / "sub") in message and "tmpdir" in message and "\n" not in message
    folder = plugin.engine.make_temp_folder({"command_prefix": [], "tmpdir": str(tmp_path / "new")}, {})
    assert Path(folder).parent == tmp_path / "new" and Path(folder).name.startswith("nst-keras-")


def test_format_number(plugin):
    assert plugin.options.format_number(5.0) == "5"
    assert plugin.options.format_number(0.5) == "0.5"
    assert plugin.options.format_number(1e-7) == "0"
    assert plugin.options.format_number(1234567.0) == "1234567"


def test_log_tail(plugin, tmp_path):
    log = tmp_path / "engine.log"
    log.write_text("\n".join(f"line {i}" for i in range(30)) + "\n\n")
    assert plugin.engine.log_tail(str(log)).splitlines() == [f"line {i}" for i in range(20, 30)]
    assert plugin.engine.log_tail(str(tmp_path / "missing.log")) == ""


def test_failure_messages(plugin):
    error = {"event": "error", "type": "input", "message": "content image 'c.png' is damaged"}
    assert plugin.engine.failure_message(1, error, "log") == "content image 'c.png' is damaged"
    crash = plugin.engine.failure_message(3, None, "Traceback\nBoom")
    assert crash.startswith("The style transfer engine crashed (exit code 3)") and crash.endswith("Traceback\nBoom")
    assert "killed by signal 9" in plugin.engine.failure_message(-9, None, "")
    assert "did not accept its command line" in plugin.engine.failure_message(2, None, "usage: ...")
    assert "without producing a result" in plugin.engine.failure_message(0, None, "")
    hung = plugin.engine.hang_message(60)
    assert hung.startswith("The engine stopped responding") and "60 s" in hung


def test_messages_speak_of_your_layer_not_temp_paths(plugin):
    names = {"/tmp/nst-keras-ab/content.png": "your layer", "/tmp/nst-keras-ab/style.png": "the style"}
    plain = plugin.engine.plain_message
    assert (
        plain("content image '/tmp/nst-keras-ab/content.png' is 20x10 pixels: too small", names)
        == "your layer is 20x10 pixels: too small"
    )
    assert plain("cannot read style image /tmp/nst-keras-ab/style.png: truncated", names) == (
        "cannot read the style: truncated"
    )
    assert plain('"/tmp/nst-keras-ab/style.png" is damaged', names) == "the style is damaged"
    assert plain("nothing to map", names) == "nothing to map" and plain(None, names) is None


def test_progress_words(plugin):
    engine = plugin.engine
    assert engine.estimate_text({"event": "started", "estimate": {"total_s": 130}}) == "This will take about 2 min"
    assert engine.estimate_text({"event": "started", "estimate": {}}) == ""
    assert engine.estimate_text({"event": "started"}) == ""
    assert engine.phase_text({"phase": "loading", "message": "Loading the network"}) == "Loading the network"
    assert engine.phase_text({"phase": "preparing"}) == "Preparing the style"
    assert set(engine.PHASE_TEXT) == set(protocol.PHASES)


def test_only_announced_previews_are_read(plugin, tmp_path):
    folder = tmp_path / "previews"
    folder.mkdir()
    announced = plugin.engine.announced_preview
    assert announced({"path": str(folder / "preview-0001.png")}, str(folder)) == str(folder / "preview-0001.png")
    assert announced({"path": str(folder / "preview-12345.png")}, str(folder)) is not None
    assert announced({"path": str(tmp_path / "preview-0001.png")}, str(folder)) is None  # elsewhere
    assert announced({"path": str(folder / "../content.png")}, str(folder)) is None
    assert announced({"path": str(folder / "preview.png")}, str(folder)) is None
    assert announced({"path": None}, str(folder)) is None and announced({"path": "x"}, None) is None
    assert protocol.PREVIEW_NAME.format(1) == "preview-0001.png"


def test_hang_timeout_setting(plugin):
    assert plugin.engine.hang_timeout_s({}) == protocol.HUNG_AFTER_S == 60.0
    assert plugin.engine.hang_timeout_s({"NST_KERAS_HANG_TIMEOUT_S": "2.5"}) == 2.5
    assert plugin.engine.hang_timeout_s({"NST_KERAS_HANG_TIMEOUT_S": "soon"}) == 60.0
    assert plugin.engine.hang_timeout_s({"NST_KERAS_HANG_TIMEOUT_S": "-1"}) == 60.0


# -- the engine runner against real processes -----------------------------------------------------


def fake_argv(tmp_path, *extra):
    out = tmp_path / "result.png"
    content = tmp_path / "content.png"
    if not content.exists():
        from PIL import Image

        Image.new("RGBA", (8, 6), (10, 200, 30, 255)).save(content)
    argv = [sys.executable, str(FAKE_ENGINE), "python", "-m", "nst_keras", str(content), str(content)]
    return [*argv, "-o", str(out), "--json", "--stop-on-eof", *extra]


def run_fake(plugin, tmp_path, mode, *extra, should_stop=None, hang_s=None, **kwargs):
    env = dict(os.environ, NST_FAKE_MODE=mode, NST_FAKE_HEARTBEAT_S="0.3")
    engine = plugin.engine.EngineRun(
        fake_argv(tmp_path, *extra), env, str(tmp_path / "engine.log"), cwd=str(tmp_path), hang_s=hang_s
    )
    events = []
    code = engine.run(on_event=events.append, pump=lambda: None, should_stop=should_stop, **kwargs)
    return engine, code, events


def test_engine_run_done(plugin, tmp_path):
    previews = tmp_path / "previews"
    previews.mkdir()
    skipped = []
    engine, code, events = run_fake(
        plugin,
        tmp_path,
        "ok",
        "--preview-every",
        "2",
        "--preview-dir",
        str(previews),
        on_skipped_preview=skipped.append,
    )
    assert code == 0
    kinds = [e["event"] for e in events]
    assert kinds[0] == "phase" and kinds[-1] == "done" and "progress" in kinds and "preview" in kinds
    assert "started" in kinds
    paths = [e["path"] for e in events + skipped if e["event"] == "preview"]
    assert paths == [str(previews / f"preview-{i:04d}.png") for i in range(1, len(paths) + 1)]
    assert engine.event("done")["output"].endswith("result.png") and (tmp_path / "result.png").exists()


def test_engine_run_error_and_crash(plugin, tmp_path):
    engine, code, _ = run_fake(plugin, tmp_path, "error")
    assert code == 1 and engine.event("error")["message"]
    engine, code, _ = run_fake(plugin, tmp_path, "crash")
    assert code == 3 and "Traceback" in plugin.engine.log_tail(engine.log_path)


def test_engine_run_stop_keeps_partial(plugin, tmp_path):
    start = time.monotonic()
    engine, code, _ = run_fake(
        plugin,
        tmp_path,
        "slow",
        "--keep-partial",
        should_stop=lambda: "keep" if time.monotonic() - start > 1.0 else None,
    )
    assert code == 130 and engine.stop_requested and not engine.hung
    assert engine.event("cancelled")["output"].endswith("result.png") and (tmp_path / "result.png").exists()
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("mode", ["stubborn", "silent"])
def test_cancel_ends_any_engine_within_5_s(plugin, tmp_path, mode):
    """Cancel: stdin closed, SIGTERM, SIGKILL: an engine that ignores EOF and SIGTERM is gone within 5 s."""
    start = time.monotonic()
    asked = []

    def should_stop():
        if time.monotonic() - start > 1.0:
            asked.append(asked[0] if asked else time.monotonic())
            return "cancel"
        return None

    engine, code, _ = run_fake(plugin, tmp_path, mode, should_stop=should_stop)
    assert code == -9 and engine.stop_requested and not engine.hung
    assert time.monotonic() - asked[0] < 5.0


def test_hung_engine_is_noticed(plugin, tmp_path):
    """An engine that prints nothing (and ignores EOF and SIGTERM) is declared hung after hang_s and killed."""
    start = time.monotonic()
    engine, code, events = run_fake(plugin, tmp_path, "silent", hang_s=1.5)
    seconds = time.monotonic() - start
    assert engine.hung and code == -9
    assert 1.5 <= seconds < 1.5 + 5.0
    assert [e["event"] for e in events] == ["started"]


def test_heartbeats_keep_a_slow_engine_alive(plugin, tmp_path):
    """Heartbeats are signs of life: a long step with heartbeats is not a hang."""
    engine, code, events = run_fake(plugin, tmp_path, "long-step", hang_s=1.5)
    assert code == 0 and not engine.hung
    assert sum(e["event"] == "heartbeat" for e in events) >= 4


def test_engine_run_missing_interpreter(plugin, tmp_path):
    engine = plugin.engine.EngineRun(["/nonexistent/python", "-m", "nst_keras"], {}, str(tmp_path / "e.log"))
    with pytest.raises(plugin.engine.PluginError, match="could not be started"):
        engine.run()


def test_engine_run_stops_engine_when_the_plugin_fails(plugin, tmp_path):
    """An exception in an event handler must not leave the engine running."""

    def boom(event):
        if event["event"] == "progress":
            raise RuntimeError("handler failed")

    env = dict(os.environ, NST_FAKE_MODE="slow")
    engine = plugin.engine.EngineRun(fake_argv(tmp_path), env, str(tmp_path / "e.log"))
    with pytest.raises(RuntimeError):
        engine.run(on_event=boom)
    assert engine.proc.poll() is not None


def test_plugin_procedure_names_documented():
    main = (PLUGIN_DIR / "nst-keras.py").read_text()
    assert 'PROCEDURE_NAME = "python-fu-nst-keras"' in main
    assert "NST_KERAS_EXTRA_ARGS" in main and "NST_KERAS_HANG_TIMEOUT_S" in main
    assert 'return f"Styled: {style_name}"' in (PLUGIN_DIR / "nst_stylize.py").read_text()


def test_settings_record(plugin):
    record = plugin.options.settings_record(values(plugin, quality="draft"), "Starry", "0.1.0", "1.2")
    json.dumps(record)
    assert record["style"] == "Starry" and record["engine"] == "1.2" and record["preset"] == "draft"
    assert record["strength"] == plugin.options.DEFAULTS["strength"]
    assert record["options"]["style-strength"] == 50.0 and record["seed"] is None
