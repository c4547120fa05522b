"""The engine client: launch settings, the engine's command line and environment, the process
(start, events, stop, hang watch), and the words a person reads about it (progress, failures).

Standard library only (GIMP's own Python). The protocol's names and decode_event come from
`protocol.py` in this folder: a copy of nst_keras/protocol.py that the installer (and the tests'
install_plugin) puts there, so there is no hand-made copy to drift.
"""

import json
import math
import os
import queue
import re
import shlex
import subprocess
import threading
import time

import protocol

SETTINGS_FILE = "nst-keras-settings.json"
NOT_INSTALLED_MESSAGE = "nst-keras engine not installed: run install/install.py (or set NST_KERAS_PYTHON)"

STOP_GRACE_S = 1.0  # Cancel: after closing stdin, before SIGTERM (the engine stops within 2 s of either)
KEEP_GRACE_S = 60.0  # "Stop and keep result": the engine finishes its step and writes the picture first
KILL_GRACE_S = 2.0  # after SIGTERM, before SIGKILL
LOG_TAIL_LINES = 10


def hang_timeout_s(environ=None):
    """Seconds without any line from the engine after which it is declared hung.

    The engine writes a heartbeat every 5 s (docs/protocol.md), so 60 s of silence means it
    stopped responding. NST_KERAS_HANG_TIMEOUT_S, or "hang_timeout_s" in the settings file,
    changes it (the tests use a few seconds).
    """
    environ = os.environ if environ is None else environ
    try:
        value = float(environ.get("NST_KERAS_HANG_TIMEOUT_S", ""))
    except ValueError:
        return protocol.HUNG_AFTER_S
    return value if math.isfinite(value) and value > 0 else protocol.HUNG_AFTER_S


class PluginError(Exception):
    """A failure to report to GIMP as EXECUTION_ERROR with this (plain-words) message."""


def debug(message):
    """Trace for tests and bug reports: printed to GIMP's terminal when NST_KERAS_DEBUG is set."""
    if os.environ.get("NST_KERAS_DEBUG"):
        import sys

        sys.stderr.write(f"nst-keras: {message}\n")
        sys.stderr.flush()


# -- settings, folders, environment, command line ------------------------------------------------


def read_settings(plugin_dir, environ):
    """The engine's launch settings: {'python', 'command_prefix', 'env', 'tmpdir'}; PluginError if unusable."""
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
    hang = settings.get("hang_timeout_s")
    if hang is not None and (isinstance(hang, bool) or not isinstance(hang, (int, float)) or not hang > 0):
        raise PluginError(f"nst-keras settings file {path}: 'hang_timeout_s' must be a number of seconds above 0")
    return {
        "python": python,
        "command_prefix": list(prefix),
        "env": {str(k): str(v) for k, v in extra_env.items()},
        "tmpdir": tmpdir,
        "hang_timeout_s": float(hang) if hang is not None else hang_timeout_s(environ),
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


def make_temp_folder(settings, environ):
    """The run's private temporary folder (mkdtemp); PluginError with one sentence when it cannot be made."""
    import tempfile

    parent = temp_parent(settings, environ)
    try:
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        return tempfile.mkdtemp(prefix="nst-keras-", dir=parent)
    except OSError as exc:
        where = parent or tempfile.gettempdir()
        source = ' (the "tmpdir" of nst-keras-settings.json)' if settings.get("tmpdir") else ""
        raise PluginError(
            f"Neural Style Transfer needs a folder it can write its temporary files to; {where}{source} "
            f"cannot be used ({exc.strerror or exc}). Choose another folder or free some space."
        ) from None


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
    options_args,
    *,
    bit_depth=8,
    keep_partial=False,
    preview=None,
    extra="",
    forward_env=None,
    cwd=None,
):
    """The engine's command line (a list: never run through a shell).

    options_args: the options' flags (nst_options.engine_args). preview: (every_n_steps, folder) or None.
    The engine stops when its stdin closes (--stop-on-eof): the plug-in's first way to stop it.
    forward_env, cwd: with `flatpak-spawn` as the command prefix, the engine's environment
    variables and working folder are passed as its --env=/--directory= options (the host
    process does not inherit the sandbox's environment), and --watch-bus is added: flatpak-spawn
    forwards SIGTERM to the host process, but a SIGKILL stops only flatpak-spawn itself, and with
    --watch-bus the host kills the engine when flatpak-spawn is gone.
    """
    prefix = list(settings["command_prefix"])
    if is_flatpak_spawn(prefix):
        if "--watch-bus" not in prefix:  # the host process dies with flatpak-spawn: a kill then stops the engine
            prefix.append("--watch-bus")
        prefix += [f"--env={key}={value}" for key, value in (forward_env or {}).items()]
        if cwd:
            prefix.append(f"--directory={cwd}")
    argv = [*prefix, settings["python"], "-m", "nst_keras", content, style, "-o", output, "--json", "--stop-on-eof"]
    argv += list(options_args)
    argv += ["--bit-depth", str(bit_depth)]
    if keep_partial:
        argv.append("--keep-partial")
    if preview:
        argv += ["--preview-every", str(int(preview[0])), "--preview-dir", preview[1]]
    if extra:
        argv += shlex.split(extra)
    return argv


PREVIEW_NAME = re.compile("^" + re.escape(protocol.PREVIEW_NAME).replace(r"\{:04d\}", r"\d{4,}") + "$")


def announced_preview(event, preview_dir):
    """The preview file an event announces, when it is one the engine may write (else None).

    Only files named preview-NNNN.png directly inside the run's own preview folder are read:
    anything else in an event is ignored, never opened.
    """
    path = event.get("path") if isinstance(event, dict) else None
    if not isinstance(path, str) or not preview_dir:
        return None
    folder = os.path.realpath(preview_dir)
    real = os.path.realpath(path)
    if os.path.dirname(real) != folder or not PREVIEW_NAME.match(os.path.basename(real)):
        return None
    return real


def remove_file(path):
    try:
        os.remove(path)
    except OSError:
        pass


# -- words --------------------------------------------------------------------------------------


def _known_seconds(value):
    """value as a float number of seconds, or None when it is missing, not a number, infinite or negative."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def format_duration(seconds):
    """'40 s', '3 min', '1 h 5 min'; '' when unknown."""
    seconds = _known_seconds(seconds)
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{max(5, int(round(seconds / 5.0) * 5))} s"
    minutes = int(round(seconds / 60.0))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_eta(seconds):
    """'about 40 s left', 'about 3 min left', 'about 1 h 5 min left'; '' when unknown."""
    seconds = _known_seconds(seconds)
    if seconds is None:
        return ""
    if seconds < 10:
        return "a few seconds left"
    return f"about {format_duration(seconds)} left"


def estimate_text(started):
    """'This will take about 2 min' from a started event's estimate; '' when the engine gave none."""
    estimate = started.get("estimate") if isinstance(started, dict) else None
    total = estimate.get("total_s") if isinstance(estimate, dict) else None
    text = format_duration(total)
    return f"This will take about {text}" if text else ""


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


PHASE_TEXT = {
    "starting": "Starting the style transfer engine",
    "loading": "Loading the network",
    "preparing": "Preparing the style",
    "planning": "Planning the run",
    "running": "Painting",
    "saving": "Saving the result",
}


def phase_text(event):
    """A phase event's sentence: the engine's own words, or ours for a known phase."""
    message = event.get("message")
    if isinstance(message, str) and message.strip():
        return message.strip()
    return PHASE_TEXT.get(event.get("phase"), "Working")


def plain_message(message, names):
    """An engine message in the words of the person using GIMP: no temporary paths.

    names: {path: words}, e.g. {content: "your layer", style: "the style"}. "content image '/tmp/x.png'"
    becomes "your layer"; any path left inside the run's temporary folder becomes "a temporary file".
    """
    if not message:
        return message
    text = str(message)
    for path, words in names.items():
        if not path:
            continue
        quoted = "(?:'{0}'|\"{0}\"|{0})".format(re.escape(path))
        label = r"(?:(?:content|style|output|init|result|preview)(?: image(?: \d+)?| file)?:?\s+)?"
        text = re.sub(label + quoted, words, text)
    return text


def log_tail(path, lines=LOG_TAIL_LINES):
    """The last `lines` non-empty lines of a log file ('' when there is none)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()[-64 * 1024 :]
    except OSError:
        return ""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def hang_message(timeout_s):
    return (
        f"The engine stopped responding (no sign of life for {timeout_s:.0f} s) and was stopped; "
        "try again, or a smaller working size if it keeps happening."
    )


def failure_message(returncode, error_event, log_text):
    """The EXECUTION_ERROR message for an engine run that did not produce a result."""
    message = (error_event or {}).get("message")
    tail = f"\nLast lines of the engine's log:\n{log_text}" if log_text else ""
    if returncode in (protocol.EXIT_USER_ERROR,) and message:
        return message
    if returncode == protocol.EXIT_USAGE:
        return (
            "The style transfer engine did not accept its command line (is it older than the plug-in? "
            "run install/install.py again)." + (f" {message}" if message else "") + tail
        )
    if returncode is not None and returncode < 0:
        hint = " (perhaps it ran out of memory: try a smaller working size)" if -returncode == 9 else ""
        return f"The style transfer engine was killed by signal {-returncode}{hint}." + tail
    if returncode == protocol.EXIT_CANCELLED:
        return "The style transfer engine was stopped before it finished." + tail
    if returncode == protocol.EXIT_OK:
        return "The style transfer engine finished without producing a result." + tail
    what = f": {message}" if message else ""
    return f"The style transfer engine crashed (exit code {returncode}){what}." + tail


# -- the process --------------------------------------------------------------------------------


class EngineRun:
    """One engine process: start it, read its events, stop it on request, watch that it lives.

    `pump()` is called about every `poll_s` while waiting (the interactive plug-in runs GTK's
    main loop there); `should_stop()` returning "cancel" or "keep" (or True, meaning "cancel")
    closes the engine's stdin, then escalates to SIGTERM and SIGKILL: after `stop_grace_s` +
    KILL_GRACE_S for "cancel", after KEEP_GRACE_S for "keep" (the engine writes its picture first).
    An engine that writes no line for `hang_s` is stopped the same fast way and `hung` is set.
    `on_event(event)` gets every event; several queued previews are collapsed into the newest one,
    the older ones are given to `on_skipped_preview(event)`.
    """

    def __init__(self, argv, env, log_path, cwd=None, hang_s=None):
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.hang_s = hang_timeout_s() if hang_s is None else hang_s
        self.proc = None
        self.returncode = None
        self.events = []  # all events but progress, preview and heartbeat
        self.stop_requested = False
        self.hung = False
        self.last_line_at = None

    def run(
        self,
        on_event=None,
        pump=None,
        should_stop=None,
        poll_s=0.05,
        stop_grace_s=STOP_GRACE_S,
        on_skipped_preview=None,
    ):
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
        self.last_line_at = time.monotonic()
        lines = queue.Queue()
        reader = threading.Thread(target=self._read, args=(self.proc.stdout, lines), daemon=True)
        reader.start()
        stop_at = None
        grace = stop_grace_s
        try:
            finished = False
            while not finished:
                if pump is not None:
                    pump()
                if not self.stop_requested:
                    wish = should_stop() if should_stop is not None else None
                    if not wish and time.monotonic() - self.last_line_at > self.hang_s:
                        self.hung, wish = True, "cancel"
                        debug(f"no line from the engine for {self.hang_s:.0f} s: stopping it")
                    if wish:
                        self.stop_requested = True
                        stop_at = time.monotonic()
                        grace = KEEP_GRACE_S if wish == "keep" else stop_grace_s
                        self._close_stdin()
                if stop_at is not None:
                    self._escalate(time.monotonic() - stop_at, grace)
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
                    if event.get("event") == protocol.PREVIEW:
                        last_preview = i
                for i, event in enumerate(batch):
                    kind = event.get("event")
                    if kind == protocol.PREVIEW and i != last_preview:
                        if on_skipped_preview is not None:
                            on_skipped_preview(event)
                        continue
                    if kind not in (protocol.PROGRESS, protocol.PREVIEW, protocol.HEARTBEAT):
                        self.events.append(event)
                    if on_event is not None:
                        on_event(event)
            if stop_at is None:
                stop_at, grace = time.monotonic(), 30.0  # stdout closed: the process is ending
            self.returncode = self._wait(pump, stop_at, grace)
        finally:
            if self.proc.poll() is None:  # an exception on our side: do not leave the engine running
                self._close_stdin()
                self._terminate_now()
            reader.join(timeout=1.0)
            self._close_pipes()
        return self.returncode

    def event(self, kind):
        """The last event of this kind (started, done, error, cancelled, ...), or None."""
        for event in reversed(self.events):
            if event.get("event") == kind:
                return event
        return None

    # -- internals --------------------------------------------------------------------------

    def _read(self, stream, lines):
        try:
            for raw in iter(stream.readline, b""):
                self.last_line_at = time.monotonic()  # any line is a sign of life
                event = protocol.decode_event(raw.decode("utf-8", errors="replace"))
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

    def _wait(self, pump, since, grace):
        """Wait for the process after its stdout closed (escalating if it hangs)."""
        while True:
            code = self.proc.poll()
            if code is not None:
                return code
            if pump is not None:
                pump()
            self._escalate(time.monotonic() - since, grace)
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
