#!/usr/bin/env python3
"""Neural Style Transfer for GIMP 3: paint a layer in the style of another picture.

Filters > Artistic > Neural Style Transfer... exports the selected layer and the style (a layer
of any open image, or an image file) to a private temporary folder, runs the nst-keras engine
(`python -m nst_keras --json`, in its own Python with TensorFlow) and adds the result as a new
layer directly above the original, with the same position and size, masked by the selection
when there is one. The whole change is one undo step.

This file runs in GIMP's own Python (standard library + gi only). It finds the engine through
`nst-keras-settings.json` next to this file, written by install/install.py:

    {"python": "/path/to/venv/bin/python",   # the engine's interpreter
     "command_prefix": [],                    # e.g. ["flatpak-spawn", "--host"] for Flatpak GIMP
     "env": {},                               # extra environment variables for the engine
     "tmpdir": null}                          # optional: where the private temp folders go

With flatpak-spawn as the prefix, "env", TMPDIR and the working folder are passed as its --env= and
--directory= options, and the temp folders go to GIMP's cache folder (the sandbox's /tmp is not
the host's).

Environment variables: NST_KERAS_PYTHON overrides "python"; NST_KERAS_EXTRA_ARGS (advanced, used
by the tests) is split like a shell command line and appended to the engine's arguments, e.g.
"--iterations 2 --min-size 32"; NST_KERAS_DEBUG=1 prints what the plug-in does (the engine's
command line, preview layer updates, the engine's exit code) to GIMP's terminal.

Settings' "env" is applied after GIMP's PYTHONPATH and PYTHONHOME are removed, so it may set
PYTHONPATH (e.g. to run the engine from a source checkout). The engine gets the run's private
temporary folder as TMPDIR; the folder is removed after every run, whatever its outcome.

The engine protocol (one JSON event per stdout line, exit codes) is described in the project's
DESIGN.md; the constants below are a copy of nst_keras/protocol.py, checked by a unit test.
"""

import json
import math
import os
import queue
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

try:
    import gi

    gi.require_version("Gimp", "3.0")
    gi.require_version("GimpUi", "3.0")
    gi.require_version("Gegl", "0.4")
    gi.require_version("Gtk", "3.0")
    from gi.repository import Gegl, Gimp, GimpUi, Gio, GLib, GObject, Gtk
except (ImportError, ValueError):  # imported outside GIMP (unit tests): only the pure logic is usable
    Gimp = None

PROCEDURE_NAME = "python-fu-nst-keras"
PLUGIN_VERSION = "0.1.0"
SETTINGS_FILE = "nst-keras-settings.json"
PARASITE_NAME = "nst-keras-settings"
LAST_STYLE_PARASITE = "nst-keras-last-style-layer"
NOT_INSTALLED_MESSAGE = "nst-keras engine not installed: run install/install.py (or set NST_KERAS_PYTHON)"

# A copy of nst_keras.protocol (tests/test_plugin_unit.py checks that they agree).
PROTOCOL_VERSION = 1
EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_UNEXPECTED = 3
EXIT_CANCELLED = 130
EV_STARTED = "started"
EV_PROGRESS = "progress"
EV_PREVIEW = "preview"
EV_DONE = "done"
EV_ERROR = "error"
EV_CANCELLED = "cancelled"

# The defaults of nst_keras.config.StyleConfig that the dialog shows (checked by the same test).
DEFAULTS = {
    "preset": "normal",
    "max_size": 1024,
    "style_weight": 10.0,
    "style_scale": 1.0,
    "preserve_colors": None,
    "seed": None,
}

# Style strength 0..100 maps to --style-weight on a log scale: the middle value (50) is
# StyleConfig's default weight, every 50 steps multiply or divide it by STRENGTH_RANGE.
STRENGTH_DEFAULT = 50.0
STRENGTH_RANGE = 10.0

# (value, label, help) of the dialog's choices.
QUALITY_CHOICES = (
    ("draft", "Quick draft", "Fewest steps: a first look in a fraction of the time"),
    ("normal", "Normal", "A good balance of quality and time"),
    ("high", "High quality", "Most steps: finest detail, takes several times longer"),
)
COLOUR_CHOICES = (
    ("off", "Off (use the style's colours)", "The result takes the colours of the style picture"),
    ("luminance", "Keep the original colours", "Only brightness and texture change; the layer keeps its colours"),
    ("histogram", "Colour-matched style", "The style's colours are first shifted to match the layer's colours"),
)

ENGINE_INPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
PREVIEW_EVERY = 10  # steps between live previews (interactive runs)
STOP_GRACE_S = 5.0  # after closing stdin, before SIGTERM
KEEP_GRACE_S = 60.0  # the same when the partial result must be written
KILL_GRACE_S = 5.0  # after SIGTERM, before SIGKILL
LOG_TAIL_LINES = 10


def debug(message):
    """Trace for tests and bug reports: printed to GIMP's terminal when NST_KERAS_DEBUG is set."""
    if os.environ.get("NST_KERAS_DEBUG"):
        sys.stderr.write(f"nst-keras: {message}\n")
        sys.stderr.flush()


class PluginError(Exception):
    """A failure to report to GIMP as EXECUTION_ERROR with this (plain-words) message."""


class UserCancelled(Exception):
    """The user pressed Cancel: leave the image as it was."""


# ------------------------------------------------------------------------------------------
# Pure logic (no GIMP): settings, command line, progress text, engine process.
# ------------------------------------------------------------------------------------------


def style_weight_for_strength(strength):
    """Style strength 0..100 -> --style-weight; 50 gives StyleConfig's default."""
    strength = min(100.0, max(0.0, float(strength)))
    return DEFAULTS["style_weight"] * STRENGTH_RANGE ** ((strength - STRENGTH_DEFAULT) / 50.0)


def strength_for_style_weight(weight):
    """The inverse of style_weight_for_strength (for the parasite and tests)."""
    return STRENGTH_DEFAULT + 50.0 * math.log(weight / DEFAULTS["style_weight"], STRENGTH_RANGE)


def format_number(value):
    """A float for the command line: short, exact enough, never in exponent form."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def format_eta(seconds):
    """'about 40 s left', 'about 3 min left', 'about 1 h 5 min left'; '' when unknown."""
    if seconds is None:
        return ""
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(seconds) or seconds < 0:
        return ""
    if seconds < 10:
        return "a few seconds left"
    if seconds < 60:
        return f"about {int(round(seconds / 5.0) * 5)} s left"
    minutes = int(round(seconds / 60.0))
    if minutes < 60:
        return f"about {minutes} min left"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes} min left" if minutes else f"about {hours} h left"


def progress_fraction(event):
    """Overall fraction 0..1 of a progress event (scales count as equal parts)."""
    try:
        scale, num_scales = int(event.get("scale", 1)), max(1, int(event.get("num_scales", 1)))
        step, num_steps = int(event.get("step", 0)), max(1, int(event.get("num_steps", 1)))
    except (TypeError, ValueError):
        return 0.0
    done = (min(max(scale, 1), num_scales) - 1) + min(max(step, 0), num_steps) / num_steps
    return min(1.0, max(0.0, done / num_scales))


def progress_text(event):
    """'Scale 2/3 · step 140/300 · about 1 min left' (scale omitted for a single scale)."""
    parts = []
    num_scales = event.get("num_scales") or 1
    if num_scales > 1:
        parts.append(f"Scale {event.get('scale', '?')}/{num_scales}")
    parts.append(f"step {event.get('step', '?')}/{event.get('num_steps', '?')}")
    eta = format_eta(event.get("eta_s"))
    if eta:
        parts.append(eta)
    text = " · ".join(parts)
    return text[0].upper() + text[1:]


def read_settings(plugin_dir, environ):
    """The engine's launch settings: {'python', 'command_prefix', 'env'}; PluginError if unusable."""
    path = os.path.join(plugin_dir, SETTINGS_FILE)
    settings = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as fh:
                settings = json.load(fh)
        except (OSError, ValueError) as exc:
            raise PluginError(
                f"nst-keras settings file {path} cannot be read ({exc}); run install/install.py again"
            ) from None
        if not isinstance(settings, dict):
            raise PluginError(f"nst-keras settings file {path} must hold a JSON object; run install/install.py again")
    python = environ.get("NST_KERAS_PYTHON") or settings.get("python")
    if not python:
        raise PluginError(NOT_INSTALLED_MESSAGE)
    prefix = settings.get("command_prefix") or []
    extra_env = settings.get("env") or {}
    if not isinstance(python, str):
        raise PluginError(f"nst-keras settings file {path}: 'python' must be a path, found {python!r}")
    if not isinstance(prefix, list) or not all(isinstance(p, str) for p in prefix):
        raise PluginError(f"nst-keras settings file {path}: 'command_prefix' must be a list of strings")
    if not isinstance(extra_env, dict):
        raise PluginError(f"nst-keras settings file {path}: 'env' must be an object of strings")
    tmpdir = settings.get("tmpdir")
    if tmpdir is not None and not isinstance(tmpdir, str):
        raise PluginError(f"nst-keras settings file {path}: 'tmpdir' must be a folder path")
    return {
        "python": python,
        "command_prefix": list(prefix),
        "env": {str(k): str(v) for k, v in extra_env.items()},
        "tmpdir": tmpdir,
    }


def is_flatpak_spawn(prefix):
    """Whether the engine is started outside GIMP's Flatpak sandbox (`flatpak-spawn --host`)."""
    return bool(prefix) and os.path.basename(prefix[0]) == "flatpak-spawn"


def temp_parent(settings, environ):
    """Where the run's private temporary folder is made: None for the system's default.

    The Flatpak GIMP's /tmp is private to its sandbox, so when the engine runs on the host the
    folder goes to GIMP's cache folder instead (~/.var/app/<id>/cache/nst-keras-tmp: the same path on
    both sides). The settings' "tmpdir" chooses any other place.
    """
    if settings.get("tmpdir"):
        return os.path.expanduser(settings["tmpdir"])
    if is_flatpak_spawn(settings.get("command_prefix")):
        cache = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(cache, "nst-keras-tmp")
    return None


def engine_environment(base, extra, tmpdir=None):
    """The engine's environment: GIMP's, without its Python settings, plus the settings' env.

    tmpdir: the run's private folder, also used as the engine's TMPDIR so that whatever it or
    TensorFlow writes to the temporary folder is removed with it.
    """
    env = {k: v for k, v in base.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    if tmpdir:
        env["TMPDIR"] = tmpdir
    env.update(extra)
    return env


def build_argv(
    settings,
    content,
    style,
    output,
    options,
    *,
    bit_depth=8,
    keep_partial=False,
    preview=None,
    extra="",
    forward_env=None,
    cwd=None,
):
    """The engine's command line (a list: never run through a shell).

    options: {'preset', 'max_size', 'style_weight', 'style_scale', 'preserve_colors', 'seed'}.
    preview: (every_n_steps, path) or None.
    forward_env, cwd: with `flatpak-spawn` as the command prefix, the engine's environment
    variables and working folder are passed as its --env=/--directory= options (the host
    process does not inherit the sandbox's environment).
    """
    prefix = list(settings["command_prefix"])
    if is_flatpak_spawn(prefix):
        prefix += [f"--env={key}={value}" for key, value in (forward_env or {}).items()]
        if cwd:
            prefix.append(f"--directory={cwd}")
    argv = [*prefix, settings["python"], "-m", "nst_keras", content, style, "-o", output, "--json"]
    argv += ["--preset", options["preset"], "--max-size", str(int(options["max_size"]))]
    argv += ["--style-weight", format_number(options["style_weight"])]
    argv += ["--style-scale", format_number(options["style_scale"])]
    if options.get("preserve_colors"):
        argv += ["--preserve-colors", options["preserve_colors"]]
    if options.get("seed") is not None:
        argv += ["--seed", str(int(options["seed"]))]
    argv += ["--bit-depth", str(bit_depth)]
    if keep_partial:
        argv.append("--keep-partial")
    if preview:
        argv += ["--preview-every", str(int(preview[0])), "--preview-path", preview[1]]
    if extra:
        argv += shlex.split(extra)
    return argv


def decode_event(line):
    """One stdout line -> event dict, or None for anything that is not an event."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        return None
    return obj


def log_tail(path, lines=LOG_TAIL_LINES):
    """The last `lines` non-empty lines of a log file ('' when there is none)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()[-64 * 1024 :]
    except OSError:
        return ""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def failure_message(returncode, error_event, log_text):
    """The EXECUTION_ERROR message for an engine run that did not produce a result."""
    message = (error_event or {}).get("message")
    tail = f"\nLast lines of the engine's log:\n{log_text}" if log_text else ""
    if returncode in (EXIT_USER_ERROR,) and message:
        return message
    if returncode == EXIT_USAGE:
        return (
            "The style transfer engine did not accept its command line (is it older than the plug-in? "
            "run install/install.py again)." + (f" {message}" if message else "") + tail
        )
    if returncode is not None and returncode < 0:
        hint = " (perhaps it ran out of memory: try a smaller maximum size)" if -returncode == 9 else ""
        return f"The style transfer engine was killed by signal {-returncode}{hint}." + tail
    if returncode == EXIT_CANCELLED:
        return "The style transfer engine was stopped before it finished." + tail
    if returncode == EXIT_OK:
        return "The style transfer engine finished without producing a result." + tail
    what = f": {message}" if message else ""
    return f"The style transfer engine crashed (exit code {returncode}){what}." + tail


class EngineRun:
    """One engine process: start it, read its events, stop it on request, collect the outcome.

    `pump()` is called about every `poll_s` while waiting (the interactive plug-in runs GTK's
    main loop there); `should_stop()` returning True closes the engine's stdin, then escalates to
    SIGTERM and SIGKILL. `on_event(event)` gets every event; several queued previews are
    collapsed into the newest one.
    """

    def __init__(self, argv, env, log_path, cwd=None):
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.proc = None
        self.returncode = None
        self.events = []  # all events but progress and preview
        self.stop_requested = False

    def run(self, on_event=None, pump=None, should_stop=None, poll_s=0.05, stop_grace_s=STOP_GRACE_S):
        with open(self.log_path, "ab") as log:
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=self.env,
                    cwd=self.cwd,
                    close_fds=True,
                    start_new_session=True,
                    creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # no console window on Windows
                )
            except OSError as exc:
                raise PluginError(
                    f"nst-keras engine could not be started ({exc.strerror or exc}: {self.argv[0]}); "
                    "run install/install.py again (or set NST_KERAS_PYTHON)"
                ) from None
        lines = queue.Queue()
        reader = threading.Thread(target=self._read, args=(self.proc.stdout, lines), daemon=True)
        reader.start()
        stop_at = None
        try:
            finished = False
            while not finished:
                if pump is not None:
                    pump()
                if not self.stop_requested and should_stop is not None and should_stop():
                    self.stop_requested = True
                    stop_at = time.monotonic()
                    self._close_stdin()
                if stop_at is not None:
                    self._escalate(time.monotonic() - stop_at, stop_grace_s)
                batch = []
                try:
                    batch.append(lines.get(timeout=poll_s))
                    while True:
                        batch.append(lines.get_nowait())
                except queue.Empty:
                    pass
                if None in batch:
                    finished = True
                    batch = batch[: batch.index(None)]
                last_preview = None
                for i, event in enumerate(batch):
                    if event.get("event") == EV_PREVIEW:
                        last_preview = i
                for i, event in enumerate(batch):
                    kind = event.get("event")
                    if kind == EV_PREVIEW and i != last_preview:
                        continue
                    if kind not in (EV_PROGRESS, EV_PREVIEW):
                        self.events.append(event)
                    if on_event is not None:
                        on_event(event)
            self.returncode = self._wait(pump, stop_grace_s if stop_at is not None else 30.0)
        finally:
            if self.proc.poll() is None:  # an exception on our side: do not leave the engine running
                self._close_stdin()
                self._terminate_now()
            reader.join(timeout=1.0)
            self._close_pipes()
        return self.returncode

    def event(self, kind):
        """The last event of this kind (started, done, error, cancelled), or None."""
        for event in reversed(self.events):
            if event.get("event") == kind:
                return event
        return None

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _read(stream, lines):
        try:
            for raw in iter(stream.readline, b""):
                event = decode_event(raw.decode("utf-8", errors="replace"))
                if event is not None:
                    lines.put(event)
        except (OSError, ValueError):
            pass
        finally:
            lines.put(None)

    def _close_stdin(self):
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.close()
        except OSError:
            pass

    def _escalate(self, waited, grace):
        if self.proc.poll() is not None:
            return
        try:
            if waited > grace + KILL_GRACE_S:
                self.proc.kill()
            elif waited > grace:
                self.proc.terminate()
        except OSError:
            pass

    def _wait(self, pump, grace):
        """Wait for the process after its stdout closed (escalating if it hangs)."""
        start = time.monotonic()
        while True:
            code = self.proc.poll()
            if code is not None:
                return code
            if pump is not None:
                pump()
            self._escalate(time.monotonic() - start, grace)
            time.sleep(0.02)

    def _terminate_now(self):
        try:
            self.proc.terminate()
            self.proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        except OSError:
            pass

    def _close_pipes(self):
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream and not stream.closed:
                    stream.close()
            except OSError:
                pass


def settings_record(options, style_name, engine_version=None):
    """What the parasite on the new layer stores (JSON)."""
    return {
        "plugin": PLUGIN_VERSION,
        "engine": engine_version,
        "style": style_name,
        "preset": options["preset"],
        "max_size": options["max_size"],
        "style_weight": options["style_weight"],
        "style_strength": options.get("style_strength"),
        "style_scale": options["style_scale"],
        "preserve_colors": options.get("preserve_colors"),
        "seed": options.get("seed"),
    }


def result_layer_name(style_name):
    return f"Styled: {style_name}"


# ------------------------------------------------------------------------------------------
# GIMP side.
# ------------------------------------------------------------------------------------------

U8_PRECISIONS = ()
if Gimp is not None:
    U8_PRECISIONS = (Gimp.Precision.U8_LINEAR, Gimp.Precision.U8_NON_LINEAR, Gimp.Precision.U8_PERCEPTUAL)


def _gfile_path(gfile):
    return gfile.get_path() if gfile is not None else None


def _run_pdb(name, **props):
    procedure = Gimp.get_pdb().lookup_procedure(name)
    if procedure is None:
        raise PluginError(f"GIMP procedure {name} is missing")
    config = procedure.create_config()
    for key, value in props.items():
        config.set_property(key.replace("_", "-"), value)
    result = procedure.run(config)
    if result.index(0) != Gimp.PDBStatusType.SUCCESS:
        raise PluginError(f"{name} failed: {Gimp.get_pdb().get_last_error()}")
    return result


def _export_png(image, path):
    _run_pdb(
        "file-png-export",
        run_mode=Gimp.RunMode.NONINTERACTIVE,
        image=image,
        file=Gio.File.new_for_path(path),
        options=None,
        interlaced=False,
        compression=1,
        bkgd=False,
        offs=False,
        phys=False,
        time=False,
        save_transparent=True,
        optimize_palette=False,
        format="auto",
        include_exif=False,
        include_iptc=False,
        include_xmp=False,
        include_color_profile=False,
        include_thumbnail=False,
        include_comment=False,
    )


def export_layer(layer, path, high_bit):
    """Write the layer's own pixels (its real size, alpha kept; offsets, visibility, opacity and
    mask ignored) to an sRGB PNG, 16 bits per channel when high_bit."""
    precision = Gimp.Precision.U16_NON_LINEAR if high_bit else Gimp.Precision.U8_NON_LINEAR
    width, height = layer.get_width(), layer.get_height()
    temp = Gimp.Image.new_with_precision(width, height, Gimp.ImageBaseType.RGB, precision)
    try:
        temp.undo_disable()
        copy = Gimp.Layer.new_from_drawable(layer, temp)
        temp.insert_layer(copy, None, 0)
        copy.set_lock_position(False)
        copy.set_offsets(0, 0)
        copy.set_visible(True)
        copy.set_opacity(100.0)
        copy.set_mode(Gimp.LayerMode.NORMAL)
        if copy.get_mask() is not None:
            copy.remove_mask(Gimp.MaskApplyMode.DISCARD)
        _export_png(temp, path)
    finally:
        temp.delete()


def export_style_file(gfile, folder, high_bit):
    """A style file the engine reads as it is, or a PNG that GIMP made from it (any format GIMP opens)."""
    path = gfile.get_path()
    if path is None:
        raise PluginError(f"The style file {gfile.get_uri()} is not a local file")
    if not os.path.isfile(path):
        raise PluginError(f"The style file {path} does not exist")
    if os.path.splitext(path)[1].lower() in ENGINE_INPUT_SUFFIXES:
        return path
    try:
        image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, gfile)
    except GLib.Error as exc:
        raise PluginError(f"The style file {path} cannot be opened: {exc.message}") from None
    if image is None:
        raise PluginError(f"The style file {path} cannot be opened")
    try:
        image.undo_disable()
        layer = image.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        out = os.path.join(folder, "style.png")
        export_layer(layer, out, high_bit)
        return out
    finally:
        image.delete()


def load_layer(image, path, width, height, name):
    """A new layer for `image` (not yet inserted) with the pixels of a PNG, scaled to width x height.

    The file is opened as a separate image (scaled there with the context's interpolation), and
    its layer copied, which converts it to the image's colour mode and precision.
    """
    try:
        loaded = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    except GLib.Error as exc:
        raise PluginError(f"The engine's result {os.path.basename(path)} cannot be read: {exc.message}") from None
    if loaded is None:
        raise PluginError(f"The engine's result {os.path.basename(path)} cannot be read")
    try:
        loaded.undo_disable()
        if (loaded.get_width(), loaded.get_height()) != (width, height):
            loaded.scale(width, height)
        layer = Gimp.Layer.new_from_drawable(loaded.get_layers()[0], image)
    finally:
        loaded.delete()
    layer.set_name(name)
    return layer


def _alpha_format(drawable):
    """(babl format name, bytes per component, components) to read and write a drawable's pixels."""
    nick = drawable.get_image().get_precision().value_nick  # e.g. "u16-non-linear", "float-linear"
    bits, _, trc = nick.partition("-")
    component, size = {"u8": ("u8", 1), "u16": ("u16", 2)}.get(bits, ("float", 4))
    linear = trc == "linear"
    if drawable.is_gray():
        return ("YA " if linear else "Y'A ") + component, size, 2
    return ("RGBA " if linear else "R'G'B'A ") + component, size, 4


def copy_alpha(source, target, rows=128):
    """Give `target` exactly the alpha channel of `source` (same size; no undo).

    The engine keeps the content's alpha, but a result scaled back up to the layer's size has soft
    edges; the original alpha at full size keeps transparent pixels transparent.
    """
    if not target.has_alpha():
        target.add_alpha()
    fmt, size, channels = _alpha_format(target)
    width, height = target.get_width(), target.get_height()
    src_buf, dst_buf = source.get_buffer(), target.get_buffer()
    stride, offset = size * channels, size * (channels - 1)
    for y in range(0, height, rows):
        rect = Gegl.Rectangle.new(0, y, width, min(rows, height - y))
        src = bytes(src_buf.get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))
        dst = bytearray(dst_buf.get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))
        for k in range(size):
            dst[offset + k :: stride] = src[offset + k :: stride]
        dst_buf.set(rect, fmt, bytes(dst))
    dst_buf.flush()


def copy_pixels(source, target):
    """Copy a layer's pixels into another layer of the same size (no undo: used for previews)."""
    rect = Gegl.Rectangle.new(0, 0, target.get_width(), target.get_height())
    dst = target.get_buffer()
    source.get_buffer().copy(rect, Gegl.AbyssPolicy.NONE, dst, rect)
    dst.flush()
    target.update(0, 0, target.get_width(), target.get_height())


class ProgressWindow:
    """A small window with the progress and two buttons: Cancel, Stop and keep result."""

    def __init__(self, style_name):
        self.choice = None  # None, "cancel" or "keep"
        self.window = Gtk.Window(title="Neural Style Transfer: running")
        self.window.set_resizable(False)
        self.window.set_border_width(12)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=8)
        self.window.add(box)
        title = Gtk.Label(label=f"Painting the layer in the style of “{style_name}”…", xalign=0.0)
        box.pack_start(title, False, False, 0)
        self.bar = Gtk.ProgressBar()
        self.bar.set_size_request(360, -1)
        box.pack_start(self.bar, False, False, 0)
        self.label = Gtk.Label(label="Starting the style transfer engine…", xalign=0.0)
        box.pack_start(self.label, False, False, 0)
        buttons = Gtk.ButtonBox(orientation=Gtk.Orientation.HORIZONTAL)
        buttons.set_layout(Gtk.ButtonBoxStyle.END)
        buttons.set_spacing(6)
        self.keep_button = Gtk.Button.new_with_mnemonic("_Stop and keep result")
        self.keep_button.set_tooltip_text("Stop now and add the picture as it is so far as a new layer")
        self.cancel_button = Gtk.Button.new_with_mnemonic("_Cancel")
        self.cancel_button.set_tooltip_text("Stop now and leave the image as it was")
        self.keep_button.connect("clicked", self._on_choice, "keep")
        self.cancel_button.connect("clicked", self._on_choice, "cancel")
        buttons.pack_start(self.keep_button, False, False, 0)
        buttons.pack_start(self.cancel_button, False, False, 0)
        box.pack_start(buttons, False, False, 0)
        self.window.connect("delete-event", self._on_delete)
        try:
            GimpUi.window_set_transient(self.window)
        except Exception:  # noqa: BLE001 - cosmetic
            pass
        self.window.show_all()

    def _on_choice(self, _button, choice):
        if self.choice is None:
            self.choice = choice
            self.keep_button.set_sensitive(False)
            self.cancel_button.set_sensitive(False)
            self.label.set_text("Stopping…" if choice == "cancel" else "Stopping and keeping the result so far…")

    def _on_delete(self, *_args):
        self._on_choice(None, "cancel")
        return True

    def update(self, fraction, text):
        if self.choice is None:
            self.bar.set_fraction(fraction)
            self.label.set_text(text)

    def pulse(self):
        self.bar.pulse()

    def close(self):
        self.window.destroy()
        pump_gtk()


def pump_gtk():
    context = GLib.MainContext.default()
    while context.pending():
        context.iteration(False)


class Stylizer:
    """One run of the filter on one layer: export, engine, result layer."""

    def __init__(self, image, layer, options, style_layer, style_file, interactive):
        self.image = image
        self.layer = layer
        self.options = options
        self.style_layer = style_layer
        self.style_file = style_file
        self.interactive = interactive
        self.style_name = style_layer.get_name() if style_layer is not None else style_file_stem(style_file)
        self.layer_name = result_layer_name(self.style_name)
        self.preview_layer = None
        self.window = None
        self.engine_version = None
        self._last_progress_ui = 0.0
        self._previews_on = True

    def run(self):
        settings = read_settings(os.path.dirname(os.path.abspath(__file__)), os.environ)
        high_bit = self.image.get_precision() not in U8_PRECISIONS
        parent = temp_parent(settings, os.environ)
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        folder = tempfile.mkdtemp(prefix="nst-keras-", dir=parent)
        try:
            content = os.path.join(folder, "content.png")
            export_layer(self.layer, content, high_bit)
            if self.style_layer is not None:
                style = os.path.join(folder, "style.png")
                export_layer(self.style_layer, style, high_bit)
            else:
                style = export_style_file(self.style_file, folder, high_bit)
            output = os.path.join(folder, "result.png")
            preview_path = os.path.join(folder, "preview.png")
            forward = {"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", "TMPDIR": folder, **settings["env"]}
            argv = build_argv(
                settings,
                content,
                style,
                output,
                self.options,
                bit_depth=16 if high_bit else 8,
                keep_partial=self.interactive,
                preview=(PREVIEW_EVERY, preview_path) if self.interactive else None,
                extra=os.environ.get("NST_KERAS_EXTRA_ARGS", ""),
                forward_env=forward,
                cwd=folder,
            )
            env = engine_environment(os.environ, settings["env"], tmpdir=folder)
            debug("engine command: " + shlex.join(argv))
            Gimp.progress_init(f"Neural Style Transfer: {self.style_name}")
            Gimp.progress_set_text("Starting the style transfer engine…")
            if self.interactive:
                self.window = ProgressWindow(self.style_name)
            engine = EngineRun(argv, env, os.path.join(folder, "engine.log"), cwd=folder)
            try:
                code = engine.run(
                    on_event=self._on_event,
                    pump=self._pump if self.interactive else None,
                    should_stop=(lambda: self.window.choice is not None) if self.interactive else None,
                    stop_grace_s=KEEP_GRACE_S if self.interactive else STOP_GRACE_S,
                )
            finally:
                if self.window is not None:
                    self.window.close()
            return self._finish(engine, code, output, log_tail(engine.log_path))
        except BaseException:
            self._remove_preview()
            raise
        finally:
            Gimp.progress_end()
            shutil.rmtree(folder, ignore_errors=True)

    # -- engine events ----------------------------------------------------------------------

    def _pump(self):
        pump_gtk()

    def _on_event(self, event):
        kind = event.get("event")
        if kind == EV_STARTED:
            self.engine_version = event.get("version")
            text = "Engine started" + (f" on {event['device']}" if event.get("device") else "")
            Gimp.progress_set_text(text)
            if self.window:
                self.window.update(0.0, text)
        elif kind == EV_PROGRESS:
            now = time.monotonic()
            if now - self._last_progress_ui < 0.1 and event.get("step") != event.get("num_steps"):
                return
            self._last_progress_ui = now
            fraction, text = progress_fraction(event), progress_text(event)
            Gimp.progress_update(fraction)
            Gimp.progress_set_text(text)
            if self.window:
                self.window.update(fraction, text)
        elif kind == EV_PREVIEW and self.interactive and self.window and self.window.choice is None:
            if self._previews_on:
                try:
                    self._show_preview(event.get("path"))
                except Exception as exc:  # noqa: BLE001 - e.g. the user deleted the preview layer
                    debug(f"previews off: {exc!r}")
                    self._previews_on = False

    def _show_preview(self, path):
        if not path or not os.path.isfile(path) or not self.layer.is_valid():
            return
        if self.preview_layer is not None and not self.preview_layer.is_valid():
            self.preview_layer = None  # deleted by the user: make a new one
        width, height = self.layer.get_width(), self.layer.get_height()
        try:
            loaded = load_layer(self.image, path, width, height, self.layer_name + " (preview)")
        except PluginError:
            return  # a preview is a nicety: never fail the run for it
        if self.preview_layer is None:
            _, x, y = self.layer.get_offsets()
            loaded.set_offsets(x, y)
            # The preview layer is not part of the undo history: it is replaced by the result.
            self.image.undo_freeze()
            try:
                self.image.insert_layer(loaded, self.layer.get_parent(), self.image.get_item_position(self.layer))
                if not Gimp.Selection.is_empty(self.image):
                    loaded.add_mask(loaded.create_mask(Gimp.AddMaskType.SELECTION))
            finally:
                self.image.undo_thaw()
            self.preview_layer = loaded
            debug("preview layer created")
        else:
            try:
                copy_pixels(loaded, self.preview_layer)
            finally:
                loaded.delete()
            debug("preview layer updated")
        Gimp.displays_flush()

    def _remove_preview(self):
        if self.preview_layer is not None and self.preview_layer.is_valid() and self.image.is_valid():
            try:
                self.image.undo_freeze()
                try:
                    self.image.remove_layer(self.preview_layer)
                finally:
                    self.image.undo_thaw()
                Gimp.displays_flush()
                debug("preview layer removed")
            except Exception:  # noqa: BLE001 - the layer may be gone already
                pass
        self.preview_layer = None

    # -- result -----------------------------------------------------------------------------

    def _finish(self, engine, code, output, tail):
        keep = self.window is not None and self.window.choice == "keep"
        debug(f"engine exit code {code}, stop requested: {engine.stop_requested}, keep: {keep}")
        if engine.stop_requested and not keep:
            raise UserCancelled()
        done = engine.event(EV_DONE)
        cancelled = engine.event(EV_CANCELLED)
        result = None
        if code == EXIT_OK and done is not None:
            result = done.get("output") or output
        elif keep and cancelled is not None and cancelled.get("output"):
            result = cancelled.get("output")
        elif keep and code == EXIT_OK and os.path.isfile(output):
            result = output  # finished before the stop request arrived
        if result is None:
            if keep:
                raise UserCancelled()  # stopped before a first step finished: nothing to keep
            raise PluginError(failure_message(code, engine.event(EV_ERROR), tail))
        if not os.path.isfile(result):
            raise PluginError(f"The style transfer engine reported a result that does not exist: {result}")
        if not self.image.is_valid() or not self.layer.is_valid():
            raise PluginError("The image or the layer was closed or deleted while the style transfer ran")
        self._remove_preview()
        return self._add_result(result)

    def _add_result(self, path):
        image, layer = self.image, self.layer
        width, height = layer.get_width(), layer.get_height()
        _, x, y = layer.get_offsets()
        Gimp.context_push()
        Gimp.context_set_interpolation(Gimp.InterpolationType.CUBIC)
        image.undo_group_start()
        new = None
        try:
            new = load_layer(image, path, width, height, self.layer_name)
            if layer.has_alpha():
                copy_alpha(layer, new)
            new.set_offsets(x, y)
            image.insert_layer(new, layer.get_parent(), image.get_item_position(layer))
            if not Gimp.Selection.is_empty(image):
                new.add_mask(new.create_mask(Gimp.AddMaskType.SELECTION))
            record = settings_record(self.options, self.style_name, self.engine_version)
            data = json.dumps(record, sort_keys=True).encode("utf-8")
            new.attach_parasite(
                Gimp.Parasite.new(PARASITE_NAME, Gimp.PARASITE_PERSISTENT | Gimp.PARASITE_UNDOABLE, list(data))
            )
        except BaseException:
            if new is not None and new.get_image() is not None:
                try:
                    image.remove_layer(new)
                except Exception:  # noqa: BLE001
                    pass
            raise
        finally:
            image.undo_group_end()
            Gimp.context_pop()
        Gimp.displays_flush()
        return new


def style_file_stem(gfile):
    path = _gfile_path(gfile) or (gfile.get_basename() if gfile is not None else "")
    return os.path.splitext(os.path.basename(path))[0] or "style"


def read_options(config):
    """The run's options from the procedure config (the engine's names and values)."""
    strength = config.get_property("style-strength")
    colours = config.get_property("keep-colours")
    seed = config.get_property("seed")
    return {
        "preset": config.get_property("quality"),
        "max_size": config.get_property("max-size"),
        "style_strength": strength,
        "style_weight": style_weight_for_strength(strength),
        "style_scale": config.get_property("style-scale"),
        "preserve_colors": None if colours == "off" else colours,
        "seed": None if seed < 0 else seed,
    }


def show_dialog(procedure, config):
    GimpUi.init(PROCEDURE_NAME)
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title="Neural Style Transfer")
    intro = dialog.get_label(
        "intro",
        "Paints the selected layer in the style of another picture. Choose a layer (it may be hidden, "
        "or in another open image) or an image file as the style. The result is added as a new layer "
        "above the original, so nothing is lost.",
        False,
        False,
    )
    intro.set_line_wrap(True)
    intro.set_max_width_chars(60)
    intro.set_xalign(0.0)
    dialog.get_spin_scale("style-strength", 1.0)
    dialog.get_spin_scale("style-scale", 1.0)
    dialog.get_label("style-title", "Style", False, False)
    dialog.fill_box("style-box", ["style-layer", "style-file"])
    dialog.fill_frame("style-frame", "style-title", False, "style-box")
    dialog.get_label("look-title", "Look", False, False)
    dialog.fill_box("look-box", ["style-strength", "keep-colours", "style-scale"])
    dialog.fill_frame("look-frame", "look-title", False, "look-box")
    dialog.get_label("quality-title", "Quality and speed", False, False)
    dialog.fill_box("quality-box", ["quality", "max-size", "seed"])
    dialog.fill_frame("quality-frame", "quality-title", False, "quality-box")
    dialog.fill(["intro", "style-frame", "look-frame", "quality-frame"])
    ok = dialog.run()
    dialog.destroy()
    return ok


def has_display():
    """Whether GTK windows can be shown (GIMP with its GUI, not gimp-console on a headless machine)."""
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def remember_style_layer(layer):
    """Keep the style layer's id for this GIMP session (a global parasite: no undo, not saved)."""
    try:
        Gimp.attach_parasite(Gimp.Parasite.new(LAST_STYLE_PARASITE, 0, list(str(layer.get_id()).encode())))
    except Exception:  # noqa: BLE001 - a convenience only
        pass


def recall_style_layer():
    try:
        parasite = Gimp.get_parasite(LAST_STYLE_PARASITE)
        if parasite is None:
            return None
        layer = Gimp.Layer.get_by_id(int(bytes(parasite.get_data()).decode()))
        return layer if layer is not None and layer.is_valid() else None
    except Exception:  # noqa: BLE001 - a convenience only
        return None


def _error(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def run_filter(procedure, run_mode, image, drawables, config, _data):
    if len(drawables) != 1:
        return _error(procedure, "Neural Style Transfer works on one layer: select exactly one layer")
    layer = drawables[0]
    if isinstance(layer, Gimp.LayerMask):
        layer = Gimp.Layer.from_mask(layer)
    if not isinstance(layer, Gimp.Layer):
        return _error(procedure, "Neural Style Transfer works on a layer; select a layer (not a channel or path)")
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    repeat = run_mode == Gimp.RunMode.WITH_LAST_VALS
    if (interactive or repeat) and config.get_property("style-layer") is None:
        # GIMP cannot store a layer in the last values: take the one of the last run in this session.
        if config.get_property("style-file") is None:
            last = recall_style_layer()
            if last is not None:
                config.set_property("style-layer", last)
    if interactive and not show_dialog(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    # Filters > Repeat (with last values) gets the progress window too when there is a screen.
    with_ui = interactive or (repeat and has_display())
    if with_ui and not interactive:
        GimpUi.init(PROCEDURE_NAME)
    style_layer = config.get_property("style-layer")
    style_file = config.get_property("style-file")
    if style_layer is None and style_file is None:
        return _error(procedure, "Choose a style: a layer to take the style from, or an image file")
    options = read_options(config)
    try:
        new_layer = Stylizer(image, layer, options, style_layer, style_file, with_ui).run()
        if style_layer is not None:
            remember_style_layer(style_layer)
    except UserCancelled:
        Gimp.displays_flush()
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    except PluginError as exc:
        return _error(procedure, str(exc))
    return Gimp.ValueArray.new_from_values(
        [GObject.Value(Gimp.PDBStatusType, Gimp.PDBStatusType.SUCCESS), GObject.Value(Gimp.Layer, new_layer)]
    )


if Gimp is not None:

    class NstKeras(Gimp.PlugIn):
        def do_query_procedures(self):
            return [PROCEDURE_NAME]

        def do_set_i18n(self, _name):
            return False, None, None

        def do_create_procedure(self, name):
            procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_filter, None)
            procedure.set_image_types("RGB*, GRAY*")
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
            procedure.set_menu_label("Neural Style Transfer...")
            procedure.add_menu_path("<Image>/Filters/Artistic")
            procedure.set_documentation(
                "Paint a layer in the style of another picture",
                "Neural style transfer (Gatys et al.): repaints the selected layer with the brush strokes, "
                "textures and colours of a style picture (a layer or an image file) and adds the result as a "
                "new layer above it, masked by the selection. Runs the nst-keras engine.",
                name,
            )
            procedure.set_attribution("nst-keras contributors", "MIT licence", "2026")
            rw = GObject.ParamFlags.READWRITE
            procedure.add_layer_argument(
                "style-layer",
                "Style la_yer",
                "The layer whose look is copied (it may be hidden, or in another open image). "
                "Leave empty to use a style file.",
                True,
                rw,
            )
            procedure.add_file_argument(
                "style-file",
                "Style _file",
                "A picture file whose look is copied, used when no style layer is chosen",
                Gimp.FileChooserAction.OPEN,
                True,
                None,
                rw,
            )
            procedure.add_double_argument(
                "style-strength",
                "Style stre_ngth",
                "How strongly the style is painted in: lower keeps more of the original picture, "
                "higher paints the style in harder. 50 is the usual balance.",
                0.0,
                100.0,
                STRENGTH_DEFAULT,
                rw,
            )
            colours = Gimp.Choice.new()
            for i, (value, label, help_text) in enumerate(COLOUR_CHOICES):
                colours.add(value, i, label, help_text)
            procedure.add_choice_argument(
                "keep-colours",
                "_Keep original colours",
                "Keep the colours of the layer and take only the texture and brush strokes of the style",
                colours,
                "off" if DEFAULTS["preserve_colors"] is None else DEFAULTS["preserve_colors"],
                rw,
            )
            procedure.add_double_argument(
                "style-scale",
                "Pattern si_ze",
                "Size of the style's brush strokes and patterns: below 1 finer, above 1 bigger",
                0.1,
                4.0,
                DEFAULTS["style_scale"],
                rw,
            )
            quality = Gimp.Choice.new()
            for i, (value, label, help_text) in enumerate(QUALITY_CHOICES):
                quality.add(value, i, label, help_text)
            procedure.add_choice_argument(
                "quality",
                "_Quality",
                "More quality takes more time",
                quality,
                DEFAULTS["preset"],
                rw,
            )
            procedure.add_int_argument(
                "max-size",
                "_Maximum size (pixels)",
                "The picture is painted at most this many pixels wide or high, then scaled back to the layer's "
                "size. Bigger shows finer detail but is slower and needs more memory. 0: the layer's own size.",
                0,
                16384,
                DEFAULTS["max_size"],
                rw,
            )
            procedure.add_int_argument(
                "seed",
                "Random s_eed",
                "The same number gives the same result again; -1 picks a new one each time",
                -1,
                2**31 - 1,
                -1 if DEFAULTS["seed"] is None else DEFAULTS["seed"],
                rw,
            )
            procedure.add_layer_return_value("styled-layer", "Styled layer", "The new layer", False, rw)
            return procedure

    if __name__ == "__main__":
        Gimp.main(NstKeras.__gtype__, sys.argv)
