"""The GIMP 3 plug-in in a real GIMP 3.0 (Debian trixie root, see gimproot.py).

Two GIMP launches share one cached root:

- gimp-console in batch mode (batch_cases.py) calls python-fu-nst-keras through the PDB on small
  images it builds: the real engine (`python -m nst_keras`, random network weights, 2 iterations)
  for layer/selection/grey/16-bit/float/style-file cases, a fake engine (fake_engine.py) for the
  failure modes, and no engine at all. TMPDIR points at a test-owned folder that must stay empty.
- the full GIMP under Xvfb (gui_driver.py + batch_gui.py) runs the dialog interactively: screenshots
  (test-output/gimp/; docs/gimp-dialog.png is made by scripts/gimp_screenshot.py, never by the tests),
  OK with the real engine and the dialog's defaults, Ctrl+Z / Ctrl+Y for the single undo step, then
  Cancel, "Stop and keep result" with live previews and Filters > Repeat. The driver records every
  GIMP message window: the tests fail on any but the one the batch script sends on purpose.

NST_TEST_ENGINE_SRC=/path/to/engine/checkout runs the real-engine cases on another engine source
(e.g. an engine branch before a merge).

Never skipped: if the root cannot be built the tests fail with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

try:  # tests/gimp as a package or as a plain folder on sys.path (pytest's default import mode)
    from . import gimproot
except ImportError:
    import gimproot

pytestmark = [pytest.mark.gimp, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
REPO = gimproot.REPO
FAKE_ENGINE = HERE / "fake_engine.py"
OUTPUT_DIR = REPO / "test-output" / "gimp"
HANG_S = 3.0  # the hung case's hang_timeout_s (the plug-in's default is 60 s)
NOT_INSTALLED = "nst-keras engine not installed: run install/install.py (or set NST_KERAS_PYTHON)"
EXTRA_ARGS = "--iterations 2 --min-size 32"  # NST_KERAS_EXTRA_ARGS: tiny, fast real-engine runs

sys.path.insert(0, str(HERE))
import fake_engine  # noqa: E402

from nst_keras.config import StyleConfig  # noqa: E402

# The engine's source folder (default: this checkout). NST_TEST_ENGINE_SRC points the real-engine cases at
# another checkout of the engine, e.g. to try the plug-in against an engine branch before a merge.
ENGINE_SRC = Path(os.environ.get("NST_TEST_ENGINE_SRC") or REPO).resolve()
ENGINE_BINDS = [] if ENGINE_SRC == REPO else [ENGINE_SRC]


def real_engine() -> dict:
    """Settings for the real engine: this interpreter (it has the engine's dependencies), random weights."""
    env = {"NST_KERAS_WEIGHTS": "random", "PYTHONPATH": str(ENGINE_SRC)}
    # The Keras backend of this test session (scripts/test.sh runs the console cases on PyTorch too).
    env["KERAS_BACKEND"] = os.environ.get("NST_KERAS_TEST_BACKEND", "tensorflow")
    return {"python": sys.executable, "command_prefix": [], "env": env}


def fake(mode: str, log: Path, **settings) -> dict:
    return {
        "python": "python-of-the-fake-engine",
        "command_prefix": [sys.executable, str(FAKE_ENGINE)],
        "env": {"NST_FAKE_MODE": mode, "NST_FAKE_LOG": str(log), "NST_FAKE_HEARTBEAT_S": "1"},
        **settings,
    }


def messages_in(text: str) -> list:
    """GIMP's error and warning messages in its output: failed PDB calls ("Calling error for procedure ...")
    and what plug-ins sent with Gimp.message, as gimp-console prints them."""
    found = []
    for line in text.splitlines():
        source = line.split(":", 1)[0]
        from_plugin = source.endswith(("-Warning", "-Error")) and not source.startswith("GIMP-")
        # (GIMP's own lines, e.g. its welcome, are not messages; nor is the error the filter itself returned,
        # which GIMP prints as "Calling error for procedure 'python-fu-nst-keras'" for the batch script)
        calling_error = "Calling error" in line and "procedure 'python-fu-nst-keras'" not in line
        if calling_error or from_plugin:
            found.append(line)
    return found


@pytest.fixture(scope="module")
def gimp_root():
    try:
        return gimproot.ensure_root()
    except gimproot.RootUnavailable as exc:
        pytest.fail(f"GIMP 3 root unavailable: {exc}", pytrace=False)


# ---------------------------------------------------------------------------------------------
# gimp-console: the PDB cases
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def console(gimp_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("gimp-console")
    profile, tmpdir, fake_log = work / "profile", work / "tmp", work / "fake.log"
    tmpdir.mkdir()
    plugin_dir = gimproot.install_plugin(profile, None)
    real = real_engine()
    spawn = work / "bin" / "flatpak-spawn"
    spawn.parent.mkdir()
    shutil.copyfile(HERE / "fake_flatpak_spawn.py", spawn)
    spawn.chmod(0o755)
    flatpak_spawn = dict(real, command_prefix=[str(spawn), "--host"])
    cache = work / "cache"  # XDG_CACHE_HOME: where the Flatpak GIMP's plug-in makes its temp folders
    cache.mkdir()
    blocked = work / "a-file"  # settings' tmpdir below a file: a folder that cannot be made
    blocked.write_text("not a folder")
    hung_log = work / "hung.log"
    cases = [
        # the real engine
        {"name": "layer", "image": "plain", "settings": real, "args": {"quality": "draft", "max-size": 48}},
        {"name": "selection", "image": "selection", "settings": real, "args": {"quality": "draft", "max-size": 64}},
        {"name": "gray", "image": "gray", "settings": real, "args": {"quality": "draft", "max-size": 64}},
        {"name": "u16", "image": "u16", "settings": real, "args": {"quality": "draft", "max-size": 64}},
        {"name": "float", "image": "float", "settings": real, "args": {"quality": "draft", "max-size": 48}},
        {
            "name": "style_file",
            "image": "plain",
            "settings": real,
            "args": {
                "style_file": str(work / "starry-night.png"),
                "quality": "draft",
                "max-size": 64,
                "keep-colours": True,
                "balance": "painterly",
                "style-strength": 80.0,
                "style-scale": 2.0,
                "same-result": True,
                "variation": 7,
            },
        },
        # the real engine through a stand-in for `flatpak-spawn --host` (the Flatpak GIMP's settings)
        {"name": "flatpak", "image": "plain", "settings": flatpak_spawn, "args": {"quality": "draft", "max-size": 64}},
        # the fake engine: plumbing and failures
        {
            "name": "xcf_style",
            "image": "plain",
            "settings": fake("ok", fake_log),
            "args": {"style_file": str(work / "My style.xcf")},
        },
        {"name": "group", "image": "group", "settings": fake("ok", fake_log)},
        {"name": "mask_selected", "image": "masked", "settings": fake("ok", fake_log), "select_mask": True},
        {"name": "missing_engine", "image": "plain", "settings": None},
        {"name": "bad_python", "image": "plain", "settings": {"python": "/nonexistent/bin/python"}},
        {"name": "engine_error", "image": "plain", "settings": fake("error", fake_log)},
        {"name": "engine_crash", "image": "plain", "settings": fake("crash", fake_log)},
        {"name": "engine_killed", "image": "plain", "settings": fake("killed", fake_log)},
        # the layer's own mask, alone and with a selection; a selection beside the layer
        {"name": "layer_mask", "image": "layer_mask", "settings": fake("ok", fake_log)},
        {"name": "layer_mask_selection", "image": "layer_mask_selection", "settings": fake("ok", fake_log)},
        {"name": "selection_outside", "image": "selection_outside", "settings": fake("ok", fake_log)},
        # user-causable failures: one clear sentence each
        {"name": "unwritable_tmpdir", "image": "plain", "settings": fake("ok", fake_log, tmpdir=str(blocked / "tmp"))},
        {"name": "style_is_content", "image": "plain", "settings": fake("ok", fake_log), "style_is_content": True},
        # an engine that starts, then never writes another line and ignores SIGTERM
        {"name": "hung", "image": "plain", "settings": fake("silent", hung_log, hang_timeout_s=HANG_S)},
    ]
    spec = {"plugin_dir": str(plugin_dir), "results": str(work / "results.json"), "tmpdir": str(tmpdir), "cases": cases}
    (work / "spec.json").write_text(json.dumps(spec))
    start = time.monotonic()
    proc = gimproot.run_gimp_batch(
        gimp_root,
        profile,
        HERE / "batch_cases.py",
        env={
            "NST_TEST_SPEC": str(work / "spec.json"),
            "TMPDIR": str(tmpdir),
            "NST_KERAS_EXTRA_ARGS": EXTRA_ARGS,
            "XDG_CACHE_HOME": str(cache),
            "NST_FAKE_SPAWN_LOG": str(work / "spawn.log"),
        },
        binds=[work, *ENGINE_BINDS],
        timeout=540,
    )
    seconds = time.monotonic() - start
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / "gimp-console.log").write_text(proc.stderr)
    report = f"gimp-console exit {proc.returncode} after {seconds:.0f} s\nSTDERR (end):\n{proc.stderr[-8000:]}"
    assert proc.returncode == 0, report
    results = json.loads((work / "results.json").read_text())
    missing = [c["name"] for c in cases if c["name"] not in results]
    assert not missing, f"cases not run: {missing}\n{report}"
    fake_runs = [json.loads(line) for line in fake_log.read_text().splitlines()] if fake_log.exists() else []
    spawns = [json.loads(line) for line in (work / "spawn.log").read_text().splitlines()]
    return {
        "results": results,
        "report": report,
        "tmpdir": tmpdir,
        "fake_runs": fake_runs,
        "seconds": seconds,
        "cache": cache,
        "spawns": spawns,
        "stderr": proc.stderr,
    }


def case(console, name) -> dict:
    record = console["results"][name]
    assert record["status"] != "exception", record["message"]
    return record


def succeeded(console, name) -> dict:
    record = case(console, name)
    assert record["status"] == "success", f"{name}: {record['message']}\n{console['report']}"
    return record


def by_name(layers, name):
    return next(layer for layer in layers if layer["name"] == name)


def test_result_layer_above_content_same_place_and_alpha(console):
    record = succeeded(console, "layer")
    new = record["new"]
    assert new["name"] == "Styled: Starry"
    assert record["returned_id"] is not None
    assert record["siblings"] == ["Starry", "Styled: Starry", "Photo", "Background"]
    assert new["position"] == new["content_position"] - 1  # directly above the content layer
    assert new["offsets"] == [20, 12] and new["size"] == [64, 48]  # max size 48 capped it: scaled back up
    assert new["visible"] and new["parent"] is None
    assert new["changed_fraction"] > 0.5, new  # the pixels are the engine's, not a copy
    assert new["transparent_kept"] and new["alpha_max_diff"] == 0  # the content's alpha, exactly
    # The style layer (hidden, other size) and everything else are untouched.
    assert by_name(record["after"], "Starry") == by_name(record["before"], "Starry")
    assert by_name(record["after"], "Photo") == by_name(record["before"], "Photo")
    assert len(record["after"]) == len(record["before"]) + 1


def test_settings_stored_as_parasite(console):
    parasite = succeeded(console, "layer")["new"]["parasite"]
    assert parasite["style"] == "Starry" and parasite["preset"] == "draft" and parasite["max_size"] == 48
    assert parasite["options"]["style-strength"] == 50.0 and parasite["options"]["quality"] == "draft"
    assert parasite["strength"] == StyleConfig().strength
    assert parasite["engine"]  # the engine's version from its started event
    stored = succeeded(console, "style_file")["new"]["parasite"]
    assert stored["preserve_colors"] == "luminance" and stored["seed"] == 7 and stored["style_scale"] == 2.0
    # the dialog's record; that the real engine accepted --look painterly is the case's success itself
    assert stored["look"] == "painterly" and stored["options"]["balance"] == "painterly"
    assert parasite["look"] == "photo"
    assert stored["options"]["keep-colours"] is True and stored["options"]["same-result"] is True
    assert stored["style"] == "starry-night"


def test_selection_becomes_layer_mask(console):
    record = succeeded(console, "selection")
    mask = record["new"].get("mask")
    assert mask is not None, record["new"]
    assert mask["inside"] == 255 and mask["outside"] == 0
    assert mask["max_diff_vs_selection"] <= 1  # the mask is the selection, feathering included
    row = mask["row"]
    soft = [v for v in row if 0 < v < 255]
    assert len(soft) >= 6, row  # a feathered edge, not a hard one
    peak = row.index(255)
    assert row[: peak + 1] == sorted(row[: peak + 1]), row  # rising into the selection


def test_grayscale_image(console):
    record = succeeded(console, "gray")
    assert record["image_gray"] and record["new"]["is_gray"]
    assert record["new"]["size"] == [64, 48] and record["new"]["transparent_kept"]


@pytest.mark.parametrize("name,precision", [("u16", "u16-non-linear"), ("float", "float-linear")])
def test_high_bit_depth_image(console, name, precision):
    record = succeeded(console, name)
    assert record["image_precision"] == precision
    new = record["new"]
    assert new["size"] == [64, 48] and new["offsets"] == [20, 12]
    assert new["changed_fraction"] > 0.5 and new["transparent_kept"]


def test_style_from_file(console):
    record = succeeded(console, "style_file")
    assert record["new"]["name"] == "Styled: starry-night"
    assert record["new"]["changed_fraction"] > 0.3  # the photo's colours were kept: only the texture changed


def test_style_file_gimp_converts(console):
    record = succeeded(console, "xcf_style")  # an .xcf the engine cannot read: GIMP exports it to PNG
    assert record["new"]["name"] == "Styled: My style"
    run = next(r for r in console["fake_runs"] if "--bit-depth" in r["argv"])
    assert run["pythonpath"] is None or run["pythonpath"] == ""


def test_layer_in_group_and_mask_selected(console):
    record = succeeded(console, "group")
    assert record["new"]["parent"] == "Group" and record["new"]["position"] == record["new"]["content_position"] - 1
    record = succeeded(console, "mask_selected")  # the layer's mask was the selected drawable
    assert record["new"]["name"] == "Styled: Starry" and record["new"]["changed_fraction"] > 0.5


def test_engine_command_line(console):
    argvs = [r["argv"] for r in console["fake_runs"]]
    assert argvs, console["report"]
    argv = argvs[0]
    assert argv[argv.index("nst_keras") - 1] == "-m" and "--json" in argv
    assert argv[argv.index("--bit-depth") + 1] == "8"
    assert argv[-4:] == EXTRA_ARGS.split()  # NST_KERAS_EXTRA_ARGS comes last
    assert "--stop-on-eof" in argv and "--preview-path" not in argv
    assert all(r["pythonpath"] is None for r in console["fake_runs"])  # GIMP's PYTHONPATH is not passed on


def test_flatpak_spawn_prefix(console):
    """The Flatpak GIMP's settings: the engine starts on the "host" with only the forwarded environment
    (random weights, PYTHONPATH), in a temporary folder under GIMP's cache folder, removed afterwards."""
    record = succeeded(console, "flatpak")
    assert record["new"]["changed_fraction"] > 0.5
    (argv,) = console["spawns"]
    assert argv[1:3] == ["--host", "--watch-bus"] and "--env=NST_KERAS_WEIGHTS=random" in argv
    folder = next(a for a in argv if a.startswith("--directory="))[len("--directory=") :]
    assert Path(folder).parent == console["cache"] / "nst-keras-tmp"
    assert f"--env=TMPDIR={folder}" in argv
    assert list((console["cache"] / "nst-keras-tmp").iterdir()) == []


def unchanged(record):
    assert record["after"] == record["before"], "the image changed although the run failed"


def test_missing_engine(console):
    record = case(console, "missing_engine")
    assert record["status"] == "execution-error"
    assert record["message"] == NOT_INSTALLED
    unchanged(record)


def test_engine_that_cannot_start(console):
    record = case(console, "bad_python")
    assert record["status"] == "execution-error"
    assert "/nonexistent/bin/python" in record["message"] and "install/install.py" in record["message"]
    unchanged(record)


def test_engine_error_message(console):
    record = case(console, "engine_error")
    assert record["status"] == "execution-error"
    # the engine named the temporary file; the plug-in speaks of "your layer"
    assert record["message"] == "your layer " + fake_engine.ERROR_MESSAGE
    unchanged(record)


def test_engine_crash_shows_log_tail(console):
    record = case(console, "engine_crash")
    assert record["status"] == "execution-error"
    assert "crashed (exit code 3)" in record["message"]
    assert fake_engine.CRASH_MARKER in record["message"] and "Traceback" in record["message"]
    unchanged(record)


def test_engine_killed(console):
    record = case(console, "engine_killed")
    assert record["status"] == "execution-error"
    assert "killed by signal 9" in record["message"]
    unchanged(record)


def test_layer_mask_carried_over(console):
    """The content layer's own mask hides the same pixels in the result (defect 3)."""
    record = succeeded(console, "layer_mask")
    assert record["new"]["mask_vs_expected"] <= 1, record["new"]
    assert 0 < record["new"]["mask_mean"] < 255
    assert record["selection_kept"]


def test_layer_mask_combined_with_selection(console):
    record = succeeded(console, "layer_mask_selection")
    new = record["new"]
    assert new["mask_vs_expected"] <= 1, new  # the minimum of the layer's mask and the (feathered) selection
    assert new["mask"]["max_diff_vs_selection"] > 100  # not the selection alone: the layer's mask hides more
    assert record["selection_kept"]  # the image's selection is as it was


def test_selection_beside_the_layer_is_refused(console):
    record = case(console, "selection_outside")
    assert record["status"] == "execution-error"
    assert record["message"].startswith("The selection does not touch your layer")
    unchanged(record)


def test_unwritable_temp_folder_is_one_sentence(console):
    record = case(console, "unwritable_tmpdir")
    assert record["status"] == "execution-error", record
    message = record["message"]
    assert message.startswith("Neural Style Transfer needs a folder it can write its temporary files to")
    assert "tmpdir" in message and "\n" not in message and "Traceback" not in message
    unchanged(record)


def test_style_layer_is_the_content_layer(console):
    record = case(console, "style_is_content")
    assert record["status"] == "execution-error"
    assert record["message"].startswith("The style layer is your layer itself")
    unchanged(record)


def test_hung_engine_is_reported_and_ended(console):
    """An engine that stops writing (and ignores SIGTERM) is reported within the hang time and killed (defect 2)."""
    record = case(console, "hung")
    assert record["status"] == "execution-error"
    assert record["message"].startswith("The engine stopped responding"), record["message"]
    assert HANG_S <= record["seconds"] < HANG_S + 6, record["seconds"]
    assert record["fake_alive"] is False  # no engine left behind
    unchanged(record)


INJECTED = "nst-keras test: injected message"  # batch_cases.py sends it last, to prove the detector works


def test_no_gimp_messages(console):
    """No failed PDB call or message reached GIMP (failures are the plug-in's own one-sentence errors)."""
    found = messages_in(console["stderr"])
    assert any(INJECTED in line for line in found), f"the detector missed the injected message:\n{console['report']}"
    assert [line for line in found if INJECTED not in line] == []


def test_no_temporary_files_left(console):
    for name, record in console["results"].items():
        leftovers = [entry for entry in record["tmpdir"] if entry != "gimp"]  # "gimp": GIMP's own temp folder
        assert not leftovers, f"{name} left {leftovers} in TMPDIR"
    assert not list(console["tmpdir"].glob("nst-keras-*"))


# ---------------------------------------------------------------------------------------------
# The full GIMP under Xvfb: the dialog, OK, undo, Cancel, Stop and keep result
# ---------------------------------------------------------------------------------------------


GUI_INJECTED = "nst-keras test: injected message in the full GIMP"
KEEP_CHANGES = {"keep-colours": True, "same-result": True}  # clicked in the "keep" run's dialog (Re-Show)
KEEP_CLICKS = [[40, 302], [40, 454]]  # the two check boxes, in the dialog's layout (test-output/gimp/dialog-keep.png)


@pytest.fixture(scope="module")
def gui(gimp_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("gimp-gui")
    profile, out = work / "profile", work / "out"
    plugin_dir = gimproot.install_plugin(profile, None)
    fake_log = work / "fake.log"
    spec = {
        "out": str(out),
        "batch": str(HERE / "batch_gui.py"),
        "plugin_dir": str(plugin_dir),
        "results": str(work / "results.json"),
        "inject_message": GUI_INJECTED,
        "runs": [
            # the first run: the dialog's defaults, and the topmost other layer as the style
            {"name": "ok", "settings": real_engine(), "action": "finish"},
            # Re-Show: the style of the last run; Cancel ends an engine that ignores EOF and SIGTERM
            {"name": "cancel", "settings": fake("stubborn", fake_log), "action": "cancel"},
            # settings changed in the dialog, which Filters > Repeat must reuse
            {"name": "keep", "settings": fake("slow", fake_log), "action": "keep", "clicks": KEEP_CLICKS},
            {"name": "repeat", "settings": fake("slow", fake_log), "action": "keep", "mode": "last-values"},
        ],
    }
    (work / "spec.json").write_text(json.dumps(spec))
    start = time.monotonic()
    proc = gimproot.run_in_root(
        gimp_root,
        ["python3", str(HERE / "gui_driver.py"), str(work / "spec.json")],
        env={
            "GIMP3_DIRECTORY": str(profile),
            "NST_TEST_SPEC": str(work / "spec.json"),
            "NST_KERAS_EXTRA_ARGS": EXTRA_ARGS,
            "NST_KERAS_DEBUG": "1",
        },
        binds=[work, *ENGINE_BINDS],
        timeout=570,
    )
    seconds = time.monotonic() - start
    gimp_log = (out / "gimp.log").read_text(errors="replace") if (out / "gimp.log").exists() else ""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for png in out.glob("*.png"):
        shutil.copyfile(png, OUTPUT_DIR / png.name)
    (OUTPUT_DIR / "gimp-gui.log").write_text(gimp_log)
    report = (
        f"GUI run exit {proc.returncode} after {seconds:.0f} s\ndriver:\n{proc.stderr[-3000:]}\n"
        f"GIMP log (end):\n{gimp_log[-5000:]}"
    )
    results_file = work / "results.json"
    assert results_file.exists(), report
    driver = json.loads((out / "driver.json").read_text())
    fake_records = [json.loads(line) for line in fake_log.read_text().splitlines()] if fake_log.exists() else []
    return {
        "results": json.loads(results_file.read_text())["runs"],
        "report": report,
        "out": out,
        "log": gimp_log,
        "code": proc.returncode,
        "seconds": seconds,
        "driver": driver,
        "fake": fake_records,
    }


def names(layers):
    return [(layer["name"], layer["has_mask"]) for layer in layers]


def driver_step(gui, run, text):
    return next(s for s in gui["driver"]["steps"] if s.get("run") == run and s["step"] == text)


def test_dialog_screenshot(gui):
    """The dialog appeared and was photographed (test-output/gimp/; docs/ is scripts/gimp_screenshot.py's job)."""
    dialog = gui["out"] / "dialog.png"
    assert dialog.exists() and dialog.stat().st_size > 5000, gui["report"]
    assert (OUTPUT_DIR / "dialog.png").exists() and (OUTPUT_DIR / "dialog-cancel.png").exists()


def test_no_message_dialogs(gui):
    """No GIMP message box during any run (defect 1: a false "Calling error" after a successful run).
    The batch script sends one message on purpose: the detector must have found exactly that one."""
    seen = gui["driver"].get("messages", [])
    assert seen, f"the detector found no message window, not even the injected one\n{gui['report']}"
    assert len(seen) == 1, f"GIMP showed message windows: {seen} (screenshots in {OUTPUT_DIR})\n{gui['report']}"
    assert "Calling error" not in gui["log"]


def test_interactive_run_is_one_undo_step(gui):
    assert gui["code"] == 0, gui["report"]
    run = gui["results"].get("ok")
    assert run is not None, gui["report"]
    assert run.get("status") == "success", f"{run.get('message')} {run.get('exception')}\n{gui['report']}"
    # no style was passed: the dialog chose the topmost other layer
    assert run["new"]["name"] == "Styled: Starry" and run["new"]["size"] == [128, 96]
    assert run["new"]["offsets"] == [16, 12] and run["new"]["has_mask"]  # the ellipse selection
    assert run["new"]["parasite"]["options"] == dict(
        run["new"]["parasite"]["options"], quality="normal", **{"max-size": 1024, "keep-colours": False}
    )  # the dialog's defaults
    assert names(run["after"]) == [("Starry", False), ("Styled: Starry", True), ("Photo", False)]
    assert names(run["after_undo"]) == names(run["before"]), "one Ctrl+Z must take the whole change back"
    assert names(run["after_second_undo"]) == names(run["before"])
    assert names(run["after_redo"]) == names(run["after"])


def test_dialog_starts_with_a_style(gui):
    """First run: the topmost other layer; Re-Show (the next runs): the last run's style, shown in the dialog."""
    shown = [line for line in gui["log"].splitlines() if line.startswith("nst-keras: dialog style: ")]
    assert len(shown) == 3, shown  # ok, cancel, keep
    assert all(line.endswith("The style: the layer “Starry”") for line in shown), shown


def test_interactive_cancel_ends_the_engine_fast(gui):
    """Cancel with an engine that ignores end of input and SIGTERM: the image as it was, the engine gone in 5 s."""
    run = gui["results"].get("cancel")
    assert run is not None, gui["report"]
    assert run.get("status") == "cancel", f"{run}\n{gui['report']}"
    assert names(run["after"]) == names(run["before"])
    assert driver_step(gui, "cancel", "stopped")["stop_s"] < 5.0
    # the live preview was shown, then removed, and left no undo step behind
    assert "nst-keras: preview layer created" in gui["log"] and "nst-keras: preview layer removed" in gui["log"]
    assert names(run["after_undo"]) == [("Starry", False), ("Photo", False)]  # Ctrl+Z undid the previous run
    assert names(run["after_redo"]) == names(run["before"])


def test_interactive_stop_and_keep(gui):
    run = gui["results"].get("keep")
    assert run is not None, gui["report"]
    assert run.get("status") == "success", f"{run}\n{gui['report']}"
    assert run["new"]["name"] == "Styled: Starry #1" and run["new"]["size"] == [128, 96]
    assert names(run["after_undo"]) == names(run["before"])
    assert names(run["after_redo"]) == names(run["after"])
    assert "nst-keras: preview layer updated" in gui["log"]
    # every announced preview was deleted once loaded: the engine never found more than the one being read
    done = [r for r in gui["fake"] if "max_waiting" in r]
    assert done and all(r["previews"] >= 2 and r["max_waiting"] <= 1 for r in done), done


def test_progress_shows_phases_and_estimate(gui):
    """Signs of life from the first second: the phases, the planner's estimate, the engine's notices."""
    assert "nst-keras: phase: Loading the network…" in gui["log"]
    assert "nst-keras: estimate: This will take about 2 min" in gui["log"]  # fake_engine.ESTIMATE_S = 130
    assert (OUTPUT_DIR / "progress-keep.png").exists()


def test_repeat_with_last_values(gui):
    """Filters > Repeat: no dialog, every last value and the last style layer, the progress window."""
    run = gui["results"].get("repeat")
    keep = gui["results"].get("keep")
    assert run is not None and keep is not None, gui["report"]
    assert run.get("status") == "success", f"{run}\n{gui['report']}"
    assert run["new"]["name"] == "Styled: Starry #2"
    assert run["new"]["parasite"]["options"] == keep["new"]["parasite"]["options"]
    assert keep["new"]["parasite"]["options"] == dict(keep["new"]["parasite"]["options"], **KEEP_CHANGES)
    assert run["new"]["parasite"]["preserve_colors"] == "luminance" and run["new"]["parasite"]["seed"] == 0
    assert names(run["after_undo"]) == names(run["before"])
