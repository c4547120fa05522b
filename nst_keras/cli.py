"""The command line: `python -m nst_keras CONTENT STYLE [STYLE...] -o OUT` and `python -m nst_keras doctor`.

The style options are generated from the fields of StyleConfig and their metadata, so the
defaults live in one place. Two audiences:

- people: a progress bar on stderr (redrawn on a terminal, a line every ~10% otherwise), a
  final line naming the output, and errors as one line `nst-keras: error: ...`;
- programs (`--json`, the GIMP plug-in): one JSON event per line on stdout and nothing else
  there (see protocol.py); stdin EOF, SIGINT or SIGTERM stop the run at the next step.

Exit codes: 0 done, 1 user error, 2 usage error, 3 unexpected error, 130 stopped.
TensorFlow is imported only once a run really starts, so `--help` and usage errors are instant.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import typing

from . import __version__, protocol
from .config import BACKBONES, INIT_MODES, StyleConfig
from .progress import Cancelled

PROG = "nst-keras"
PREVIEW_SUFFIX = ".preview.png"
SIXTEEN_BIT_EXTENSIONS = (".png", ".tif", ".tiff")  # output formats that hold 16 bits per channel
MIN_SIDE = 32  # the network needs at least this many pixels on each side
JSON_PROGRESS_INTERVAL_S = 0.1  # at most ~10 progress events per second
TTY_REDRAW_INTERVAL_S = 0.1

# Flags whose shape differs from what the field's type alone would give.
_SPECIAL = {
    "preserve_colors": {"nargs": "?", "const": "luminance"},
    "init": {"metavar": "content|noise|FILE"},
}

_USER_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


# The parser ---------------------------------------------------------------------------------


class UsageError(Exception):
    """A bad command line (argparse's error), reported with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print and exit; main() decides how to report it
        raise UsageError(message)


def _config_fields() -> list:
    return [f for f in dataclasses.fields(StyleConfig) if f.metadata.get("cli", True)]


def flag_for(field: dataclasses.Field) -> str:
    """The command-line flag of a StyleConfig field: metadata's flag, or --field-name."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def config_flags() -> dict:
    """{StyleConfig field name: flag} for every field on the command line."""
    return {f.name: flag_for(f) for f in _config_fields()}


def _value_type(field: dataclasses.Field, hints: dict):
    """The Python type of one value of `field` (the element type for tuples), from its annotation and default."""
    hint = hints[field.name]
    if typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    origin = typing.get_origin(hint) or hint
    if origin is tuple:
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if args:
            return args[0]
        default = field.default
        return type(default[0]) if isinstance(default, tuple) and default else float
    return origin


def _show_default(value) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def _add_config_option(group, field: dataclasses.Field, hints: dict) -> None:
    meta = field.metadata
    kind = _value_type(field, hints)
    help_text = (meta.get("help") or "").replace("%", "%%")
    kwargs = {"dest": field.name, "default": argparse.SUPPRESS}  # only flags given on the command line are set
    if kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs["type"] = kind
        if meta.get("nargs"):
            kwargs["nargs"] = meta["nargs"]
        if meta.get("choices"):
            kwargs["choices"] = tuple(meta["choices"])
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
    kwargs.update(_SPECIAL.get(field.name, {}))
    if field.name == "preserve_colors":
        kwargs["metavar"] = "|".join(meta["choices"])
        help_text += " (default: off; the flag alone means luminance)"
    elif field.default is not None:
        help_text += f" (default: {_show_default(field.default)})"
    group.add_argument(flag_for(field), help=help_text, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the stylize command, its style options generated from StyleConfig."""
    parser = _Parser(
        prog=PROG,
        usage="%(prog)s CONTENT STYLE [STYLE ...] -o OUT [options]\n       %(prog)s doctor [--json] [--backbone B] "
        "[--weights FILE]",
        description="Paint CONTENT in the style of one or more STYLE images (Gatys et al. neural style transfer).",
        epilog=f"'{PROG} doctor' checks the installation and the network weights (exit 0 when ready). "
        "Exit codes: 0 done, 1 error in the input or settings, 2 bad command line, 3 unexpected error, 130 stopped.",
        allow_abbrev=False,
    )
    parser.add_argument("content", metavar="CONTENT", help="the photo to repaint")
    parser.add_argument("styles", metavar="STYLE", nargs="+", help="one or more images whose style is applied")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="where to write the result (.png, ...)")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")

    run = parser.add_argument_group("output and reporting")
    run.add_argument("--json", action="store_true", help="machine-readable JSON events on stdout (for programs)")
    run.add_argument("--keep-partial", action="store_true", help="when stopped, write the best result so far to OUT")
    run.add_argument(
        "--bit-depth",
        type=int,
        choices=(8, 16),
        default=None,
        help="bits per channel of OUT (default: 16 when the content is 16-bit and OUT is .png or .tif, else 8)",
    )
    run.add_argument("--preview-every", type=int, default=None, metavar="N", help="write a preview image every N steps")
    run.add_argument(
        "--preview-path",
        default=None,
        metavar="FILE",
        help=f"where the preview goes (default: OUT's name + '{PREVIEW_SUFFIX}' in OUT's folder; removed at the end)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="print only errors")

    style = parser.add_argument_group("style transfer settings")
    hints = typing.get_type_hints(StyleConfig)
    for field in _config_fields():
        _add_config_option(style, field, hints)
    return parser


def build_doctor_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} doctor",
        description="Report versions, the compute device and whether the network weights are available "
        "(exit 0 when they are, 1 when not).",
        allow_abbrev=False,
    )
    default = StyleConfig()
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--backbone", choices=BACKBONES, default=default.backbone, help=f"(default: {default.backbone})"
    )
    parser.add_argument("--weights", metavar="FILE", default=None, help="a weights file to check")
    return parser


def config_from_args(args: argparse.Namespace) -> StyleConfig:
    """StyleConfig's defaults, replaced by the options given on the command line (not yet validated)."""
    names = {f.name for f in dataclasses.fields(StyleConfig)}
    given = {k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(args).items() if k in names}
    return dataclasses.replace(StyleConfig(), **given)


def _flag_message(message: str) -> str:
    """Name settings as the command line spells them: 'style_weight: ...' -> '--style-weight: ...'."""
    flags = config_flags()
    head, sep, rest = message.partition(":")
    if sep and head in flags:
        message = flags[head] + sep + rest
    return re.sub(r"\b[a-z]+(?:_[a-z]+)+\b", lambda m: flags.get(m.group(0), m.group(0)), message)


# Reporting ------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _duration(seconds) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _wxh(size) -> str:
    h, w = size
    return f"{w}x{h}"


class Reporter:
    """Writes protocol events (when --json) and human messages on stderr."""

    def __init__(self, events=None):
        self.events = events
        self.quiet = False
        self.on_reader_gone = None  # called once when the event stream breaks (the reader went away)
        self.bar = None
        self._lock = threading.Lock()
        self._broken = False

    @property
    def json(self) -> bool:
        return self.events is not None

    def event(self, name: str, *, timeout: float = -1, **fields) -> None:
        if self.events is None or self._broken:
            return
        line = protocol.encode_event(name, **fields) + "\n"
        if not self._lock.acquire(timeout=timeout):
            return
        try:
            self.events.write(line)
            self.events.flush()
        except (OSError, ValueError):  # broken pipe or closed stream: nobody is listening any more
            self._broken = True
            if self.on_reader_gone is not None:
                self.on_reader_gone()
        finally:
            self._lock.release()

    def say(self, text: str) -> None:
        """A human message (suppressed by --quiet and in --json mode, where stderr is only a log)."""
        if not self.quiet and not self.json:
            self.note(text)

    def note(self, text: str) -> None:
        """A message that also goes to the log in --json mode."""
        if self.bar is not None:
            self.bar.interrupt()
        print(text, file=sys.stderr, flush=True)

    def error(self, kind: str, message: str) -> None:
        message = _one_line(message)
        self.note(f"{PROG}: error: {message}")
        self.event(protocol.ERROR, type=kind, message=message)


class ProgressBar:
    """Progress for people on stderr: redrawn in place on a terminal, a line every ~10% of a scale otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self._drawn = 0  # length of the line on screen (terminal only)
        self._last_draw = 0.0
        self._last_decile = None

    def _line(self, p, width: int) -> str:
        head = f"scale {p.scale}/{p.num_scales} {_wxh(p.size)}"
        if p.tile:
            head += f" tile {p.tile[0]}/{p.tile[1]}"
        loss = "?" if p.loss is None or p.loss != p.loss else f"{p.loss:.4g}"
        tail = f" step {p.step}/{p.num_steps} loss {loss} elapsed {_duration(p.elapsed_s)} ETA {_duration(p.eta_s)}"
        room = width - len(head) - len(tail) - 4
        if not self.tty or room < 10:
            return head + tail
        room = min(room, 30)
        filled = int(room * p.step / max(1, p.num_steps))
        return f"{head} [{'#' * filled}{'.' * (room - filled)}]{tail}"

    def update(self, p) -> None:
        last = p.step >= p.num_steps
        now = time.monotonic()
        if self.tty:
            if not last and now - self._last_draw < TTY_REDRAW_INTERVAL_S:
                return
            self._last_draw = now
            width = shutil.get_terminal_size((100, 24)).columns - 1
            line = self._line(p, width)[:width]
            self.stream.write("\r" + line + " " * max(0, self._drawn - len(line)))
            self._drawn = len(line)
            if last:
                self.stream.write("\n")
                self._drawn = 0
            self.stream.flush()
            return
        decile = (p.scale, p.tile, p.step * 10 // max(1, p.num_steps))
        if last or decile != self._last_decile:
            self._last_decile = decile
            self.stream.write(self._line(p, 0) + "\n")
            self.stream.flush()

    def interrupt(self) -> None:
        """End the line being redrawn so that a message can be printed below it."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0


@contextlib.contextmanager
def protocol_stdout():
    """For --json: yield a private stream on the real stdout, and point fd 1 at stderr meanwhile.

    Any print() or C++ library chatter then lands on stderr, so stdout carries protocol lines only.
    """
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no stdout at all: events go nowhere useful, but do not fail
        saved = None
    if saved is None:
        yield open(os.devnull, "w", encoding="utf-8")
        return
    events = os.fdopen(os.dup(saved), "w", encoding="utf-8", newline="\n")
    os.dup2(2, 1)
    old_stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        yield events
    finally:
        sys.stdout = old_stdout
        with contextlib.suppress(OSError, ValueError):
            events.close()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# Stopping ----------------------------------------------------------------------------------


def watch_stdin(stop: threading.Event, reporter: Reporter) -> None:
    """--json: the reader closes our stdin to ask for a stop. Runs in a daemon thread."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:  # no usable stdin: nothing to watch
        return
    if not stop.is_set():
        stop.set()
        reporter.note(f"{PROG}: stdin closed: stopping after the current step")


class StopRequest:
    """SIGINT/SIGTERM (and stdin EOF with --json) set `event`; a second SIGINT exits at once with 130.

    A wake-up socket lets a helper thread see signals even while the main thread is busy inside
    TensorFlow, so the second Ctrl+C is immediate.
    """

    def __init__(self, reporter: Reporter, watch_stdin_eof: bool = False):
        self.event = threading.Event()
        self.reporter = reporter
        self.watch_stdin_eof = watch_stdin_eof
        self.cleanup = []  # callables run before an immediate exit
        self._sigints = 0
        self._requested = False  # a signal asked for the stop (the note is printed once)
        self._old_handlers = {}
        self._old_wakeup = None
        self._sockets = None
        self._thread = None
        reporter.on_reader_gone = self.event.set

    def is_set(self) -> bool:
        return self.event.is_set()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._install_signals()
        if self.watch_stdin_eof:
            threading.Thread(target=watch_stdin, args=(self.event, self.reporter), name="stdin", daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._restore_signals()
        return False

    def _install_signals(self) -> None:
        signals = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
        for sig in signals:
            self._old_handlers[sig] = signal.signal(sig, self._python_handler)
        try:
            r, w = socket.socketpair()
            w.setblocking(False)
            self._old_wakeup = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
        except (OSError, ValueError):
            return
        self._sockets = (r, w)
        self._thread = threading.Thread(target=self._watch_signals, args=(r,), name="signals", daemon=True)
        self._thread.start()

    def _restore_signals(self) -> None:
        if self._sockets is not None:
            with contextlib.suppress(OSError, ValueError):
                signal.set_wakeup_fd(self._old_wakeup if self._old_wakeup is not None else -1)
            r, w = self._sockets
            with contextlib.suppress(OSError):
                r.shutdown(socket.SHUT_RDWR)
            if self._thread is not None:
                self._thread.join(timeout=1.0)
            r.close()
            w.close()
            self._sockets = None
        for sig, old in self._old_handlers.items():
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._old_handlers = {}

    def _python_handler(self, signum, frame) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._on_signal(signum)
        # else: the watcher thread got the signal through the wake-up socket and handles it

    def _watch_signals(self, sock) -> None:
        while True:
            try:
                data = sock.recv(64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                self._on_signal(signum)

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGINT:
            self._sigints += 1
            if self._sigints >= 2:
                self._exit_now()
        elif signum != getattr(signal, "SIGTERM", None):
            return
        first = not self._requested
        self._requested = True
        if first:
            again = " (press Ctrl+C again to quit at once)" if signum == signal.SIGINT else ""
            name = "interrupted" if signum == signal.SIGINT else "terminated"
            self.reporter.note(f"{PROG}: {name}: stopping after the current step{again}")
        self.event.set()

    def _exit_now(self) -> None:
        for fn in self.cleanup:
            with contextlib.suppress(Exception):
                fn()
        self.reporter.event(protocol.CANCELLED, timeout=0.5, output=None)
        with contextlib.suppress(OSError):
            os.write(2, f"\n{PROG}: stopped at once; nothing written\n".encode())
        os._exit(protocol.EXIT_CANCELLED)


# Errors -------------------------------------------------------------------------------------


def _class_names(exc: BaseException) -> set:
    return {c.__name__ for c in type(exc).__mro__}


def error_kind(exc: BaseException) -> str:
    """The protocol's error type of an exception: input, weights, memory or internal."""
    names = _class_names(exc)
    if isinstance(exc, MemoryError) or names & {"ResourceExhaustedError", "OutOfMemoryError"}:
        return "memory"
    if "WeightsUnavailable" in names:
        return "weights"
    if isinstance(exc, (ValueError, *_USER_OS_ERRORS)):
        return "input"
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        return "input"
    return "internal"


def _user_message(exc: BaseException, kind: str, config) -> str:
    if kind == "memory":
        size = f" (it is {config.max_size} now)" if config is not None and config.max_size else ""
        return f"out of memory: try a smaller --max-size{size}, e.g. --max-size 512, or close other programs"
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return _one_line(str(exc)) or type(exc).__name__


def report_exception(exc: BaseException, reporter: Reporter, config=None) -> int:
    """Report an exception as the protocol says; return the exit code (1 user error, 3 unexpected)."""
    kind = error_kind(exc)
    if kind != "internal":
        reporter.error(kind, _user_message(exc, kind, config))
        if os.environ.get("NST_KERAS_DEBUG"):
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        return protocol.EXIT_USER_ERROR
    summary = _one_line(f"{type(exc).__name__}: {exc}")
    if len(summary) > 300:
        summary = summary[:297] + "..."
    reporter.error("internal", f"unexpected error: {summary} (please report it, with the log below)")
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    sys.stderr.flush()
    return protocol.EXIT_UNEXPECTED


def _jsonable(value):
    """A JSON-safe copy of `value` (numpy numbers and arrays become Python numbers and lists)."""

    def convert(obj):
        if hasattr(obj, "tolist"):
            return obj.tolist()
        if hasattr(obj, "item"):
            return obj.item()
        raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")

    return json.loads(json.dumps(value, default=convert))


# The run ------------------------------------------------------------------------------------


def _imageio():
    return importlib.import_module("nst_keras.imageio")


def _engine():
    from .device import quiet_tensorflow

    quiet_tensorflow()
    return importlib.import_module("nst_keras.engine")


def _describe_device(filter_chatter: bool = False) -> str:
    from . import device

    with quiet_stderr(filter_chatter):
        return device.describe()


# TensorFlow's C++ start-up lines (absl logging ignores TF_CPP_MIN_LOG_LEVEL for these).
_TF_CHATTER = re.compile(
    r"^(?:[IW]\d{4} \d|WARNING: All log messages before absl::InitializeLog|To enable the following instructions"
    r"|E\d{4} .*(?:cuInit|cuda_platform|cuda_dnn|cuda_blas|cuda_fft|Unable to register))"
)


@contextlib.contextmanager
def quiet_stderr(active: bool = True):
    """For people: hold back TensorFlow's informational start-up lines on stderr (everything else is kept)."""
    if not active or os.environ.get("NST_KERAS_DEBUG"):
        yield
        return
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        held = tempfile.TemporaryFile()
        saved = os.dup(2)
    except OSError:
        yield
        return
    os.dup2(held.fileno(), 2)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        held.seek(0)
        text = held.read().decode("utf-8", errors="replace")
        held.close()
        kept = [line for line in text.splitlines() if not _TF_CHATTER.match(line)]
        if kept:
            print("\n".join(kept), file=sys.stderr, flush=True)


class _Run:
    """One stylize command, from parsed arguments to an exit code."""

    def __init__(self, args: argparse.Namespace, reporter: Reporter, stop: StopRequest, started_at: float):
        self.args = args
        self.rep = reporter
        self.stop = stop
        self.t0 = started_at
        self.config = None
        self.output = None
        self.preview_path = None
        self.bit_depth = 8
        self.icc_profile = None
        self.bar = None if (reporter.json or args.quiet) else ProgressBar()
        reporter.bar = self.bar
        self._last_event = 0.0
        self._pending = None  # (group, fields) of a progress event held back by the throttle
        self._preview_failed = False

    # Settings and paths.

    def prepare(self) -> None:
        args = self.args
        try:
            self.config = config_from_args(args).validate(num_styles=len(args.styles))
            from .backend import select  # stdlib only: the backend is chosen before anything imports Keras

            select(self.config.backend)
        except ValueError as error:
            raise ValueError(_flag_message(str(error))) from None
        if args.preview_every is not None and args.preview_every < 1:
            raise ValueError(f"--preview-every: expected a whole number >= 1, received {args.preview_every}")
        imageio = _imageio()
        styles = args.styles
        inputs = [("content image", args.content)]
        inputs += [(f"style image {i + 1}" if len(styles) > 1 else "style image", p) for i, p in enumerate(styles)]
        if self.config.init not in INIT_MODES:
            inputs.append(("init image", self.config.init))
        self.output = imageio.check_output_path(args.output, inputs=inputs)
        extension = os.path.splitext(self.output)[1].lower()
        if args.bit_depth == 16 and extension not in SIXTEEN_BIT_EXTENSIONS:
            raise ValueError(
                f"--bit-depth 16: {extension or 'this'} files hold 8 bits per channel; write .png or .tif instead"
            )
        if args.preview_every:
            preview = args.preview_path or os.path.join(
                os.path.dirname(self.output), os.path.splitext(os.path.basename(self.output))[0] + PREVIEW_SUFFIX
            )
            self.preview_path = imageio.check_output_path(
                preview, inputs=[*inputs, ("output", self.output)], what="preview file (--preview-path)"
            )

    def load(self) -> tuple:
        """(content LoadedImage, [style RGB arrays], init RGB array or None)."""
        imageio, config = _imageio(), self.config
        cap = config.max_size or None
        style_cap = None if cap is None else int(cap * max(1.0, config.style_scale)) + 1
        limit = config.pixel_limit
        content = imageio.load_image(
            self.args.content, what="content image", pixel_limit=limit, max_size=cap, min_side=MIN_SIDE
        )
        styles = []
        for i, path in enumerate(self.args.styles):
            what = f"style image {i + 1}" if len(self.args.styles) > 1 else "style image"
            style = imageio.load_image(path, what=what, pixel_limit=limit, max_size=style_cap, min_side=MIN_SIDE)
            styles.append(style.rgb)
        init = None
        if config.init not in INIT_MODES:
            init = imageio.load_image(config.init, what="init image", pixel_limit=limit, max_size=cap).rgb
        return content, styles, init

    # Progress.

    def on_progress(self, p) -> None:
        if self.rep.json:
            fields = {
                "scale": p.scale,
                "num_scales": p.num_scales,
                "step": p.step,
                "num_steps": p.num_steps,
                "loss": p.loss,
                "eta_s": None if p.eta_s is None else round(p.eta_s, 2),
                "elapsed_s": round(p.elapsed_s, 3),
                "size": list(p.size),
            }
            if p.tile:
                fields["tile"] = list(p.tile)
            group = (p.scale, p.tile)
            if self._pending is not None and self._pending[0] != group:
                self.flush_progress()  # the previous scale (or tile) ended early: still report its last step
            now = time.monotonic()
            if p.step >= p.num_steps or p.step == 1 or now - self._last_event >= JSON_PROGRESS_INTERVAL_S:
                self._last_event = now
                self._pending = None
                self.rep.event(protocol.PROGRESS, **fields)
            else:
                self._pending = (group, fields)
        elif self.bar is not None:
            self.bar.update(p)
        every = self.args.preview_every
        if every and self.preview_path and (p.step % every == 0 or p.step >= p.num_steps):
            self._write_preview(p)

    def flush_progress(self) -> None:
        """Send the progress event held back by the throttle, if any."""
        if self._pending is not None:
            fields, self._pending = self._pending[1], None
            self.rep.event(protocol.PROGRESS, **fields)

    def _write_preview(self, p) -> None:
        if self._preview_failed:
            return
        try:
            image = p.image()
            if image is None:
                return
            _imageio().save_image(self.preview_path, image, bit_depth=8, what="preview")
        except Exception as error:  # noqa: BLE001 - a preview must never stop the run
            self._preview_failed = True
            self.rep.note(f"{PROG}: warning: cannot write the preview ({_one_line(error)}); no more previews")
            return
        self.rep.event(protocol.PREVIEW, path=self.preview_path, scale=p.scale, step=p.step, size=list(p.size))

    def remove_preview(self) -> None:
        if self.preview_path:
            with contextlib.suppress(OSError):
                os.remove(self.preview_path)

    # The whole run.

    def execute(self) -> int:
        self.prepare()
        loaded, styles, init = self.load()
        content = loaded.rgba()
        self.icc_profile = getattr(loaded, "icc_profile", None)
        extension = os.path.splitext(self.output)[1].lower()
        if self.args.bit_depth is not None:
            self.bit_depth = self.args.bit_depth
        else:
            self.bit_depth = 16 if loaded.bit_depth == 16 and extension in SIXTEEN_BIT_EXTENSIONS else 8
        if self.stop.is_set():
            raise Cancelled(None)

        engine = _engine()
        config = self.config
        h, w = content.shape[:2]
        plan_scales = getattr(engine, "plan_scales", None)
        if callable(plan_scales):
            schedule = plan_scales(config, h, w)
            scales = [(sh, sw) for sh, sw, _ in schedule]
            iterations = [n for _, _, n in schedule]
        else:
            scales = config.scales(h, w)
            iterations = config.iterations_per_scale(len(scales))
        size = tuple(config.target_size(h, w))
        started = {
            "protocol": protocol.PROTOCOL_VERSION,
            "version": __version__,
            "device": _describe_device(filter_chatter=not self.rep.json),
            "size": list(size),
            "num_scales": len(scales),
            "scales": [list(s) for s in scales],
            "iterations": iterations,
            "output": self.output,
            "bit_depth": self.bit_depth,
        }
        plan = getattr(engine, "plan", None)
        if callable(plan):
            try:
                started["estimate"] = _jsonable(plan(content.shape, config))
            except ValueError:
                raise
            except Exception as error:  # noqa: BLE001 - an estimate is a nicety
                self.rep.note(f"{PROG}: warning: no estimate ({type(error).__name__}: {_one_line(error)})")
        self.rep.event(protocol.STARTED, **started)
        steps = "+".join(str(n) for n in iterations)
        self.rep.say(
            f"{PROG} {__version__} on {started['device']}: {_wxh(size)}, "
            f"{len(scales)} scale{'s' if len(scales) != 1 else ''} ({', '.join(_wxh(s) for s in scales)}), "
            f"{steps} steps"
        )

        kwargs = {"on_progress": self.on_progress, "should_stop": self.stop.is_set}
        if init is not None:
            kwargs["init_image"] = init
        result = engine.stylize(content, styles, config, **kwargs)
        self.flush_progress()

        self._save(result, "output")
        elapsed = time.monotonic() - self.t0
        out_size = list(result.shape[:2])
        self.rep.event(protocol.DONE, output=self.output, elapsed_s=round(elapsed, 3), size=out_size)
        self.rep.say(f"wrote {self.output} ({_wxh(out_size)}, {self.bit_depth}-bit) in {_duration(elapsed)}")
        return protocol.EXIT_OK

    def _save(self, image, what: str) -> None:
        extra = {"icc_profile": self.icc_profile} if self.icc_profile else {}
        _imageio().save_image(self.output, image, bit_depth=self.bit_depth, what=what, **extra)

    def cancelled(self, error: Cancelled) -> int:
        written = None
        if self.args.keep_partial and error.image is not None and self.output:
            try:
                self._save(error.image, "partial output")
                written = self.output
            except Exception as save_error:  # noqa: BLE001 - still a cancellation
                self.rep.note(f"{PROG}: cannot write the partial result: {_one_line(save_error)}")
        self.rep.event(protocol.CANCELLED, output=written)
        if written:
            self.rep.note(f"{PROG}: stopped; the best result so far is in {written}")
        else:
            self.rep.note(f"{PROG}: stopped; nothing written")
        return protocol.EXIT_CANCELLED


def _stylize_command(argv: list, reporter: Reporter, started_at: float) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        return _usage_error(parser, reporter, str(error))
    except SystemExit as done:  # --help, --version
        return done.code if isinstance(done.code, int) else 0
    reporter.quiet = args.quiet
    with StopRequest(reporter, watch_stdin_eof=reporter.json) as stop:
        run = _Run(args, reporter, stop, started_at)
        stop.cleanup.append(run.remove_preview)
        try:
            return run.execute()
        except Cancelled as error:
            return run.cancelled(error)
        except KeyboardInterrupt:
            return run.cancelled(Cancelled(None))
        except Exception as error:  # noqa: BLE001 - every failure becomes one clear report
            return report_exception(error, reporter, run.config)
        finally:
            run.remove_preview()


def _usage_error(parser: argparse.ArgumentParser, reporter: Reporter, message: str) -> int:
    parser.print_usage(sys.stderr)
    reporter.note(f"{parser.prog}: error: {message}")
    reporter.event(protocol.ERROR, type="usage", message=_one_line(message))
    return protocol.EXIT_USAGE


# doctor -------------------------------------------------------------------------------------


def _version_of(module: str) -> str:
    try:
        mod = importlib.import_module(module)
    except Exception as error:  # noqa: BLE001 - report, do not fail
        return f"not available ({type(error).__name__}: {_one_line(error)[:120]})"
    return str(getattr(mod, "__version__", "unknown"))


def _weights_message(status: dict, backbone: str, weights) -> str:
    from . import weights as weights_module

    label = backbone.upper()
    if status["available"]:
        if status["source"] == "random":
            return "random weights (for tests only: the results will not look like the style)"
        checked = "hash ok" if status["hash_ok"] else "not Keras's published file; used as given"
        return f"{label} weights: {status['path']} (from {status['source']}, {checked})"
    get = (
        f"download {status['origin']} (md5 {status['expected_md5']}) and put it at {status['cache_path']}, "
        f"or pass --weights FILE (or set {weights_module.ENV_WEIGHTS})"
    )
    if status["source"] == "cache" and status["path"]:
        return f"the cached {label} weights {status['path']} are corrupted or incomplete: delete the file and {get}"
    if status["source"] in ("file", "env") or weights:
        try:
            weights_module.resolve_weights(backbone, weights, download=False)
        except ValueError as error:
            return _one_line(error)
    return f"{label} weights not found in the Keras cache; a run downloads them once (needs internet), or {get}"


def _doctor_facts() -> dict:
    import platform

    report = {
        "python": platform.python_version(),
        "nst_keras": __version__,
        "tensorflow": _version_of("tensorflow"),
        "keras": _version_of("keras"),
        "numpy": _version_of("numpy"),
        "pillow": _version_of("PIL"),
    }
    try:
        import keras

        report["keras_backend"] = keras.backend.backend()
    except Exception as error:  # noqa: BLE001 - report, do not fail
        report["keras_backend"] = f"unknown ({type(error).__name__})"
    try:
        from . import device

        info = device.device_info()
        report["device"] = device.describe()
        report["gpu_count"] = info.get("count", 0)
    except Exception as error:  # noqa: BLE001 - TensorFlow missing or broken
        report["device"] = f"not available ({type(error).__name__}: {_one_line(error)[:120]})"
        report["gpu_count"] = 0
    return report


def _doctor(argv: list, reporter: Reporter) -> int:
    parser = build_doctor_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        return _usage_error(parser, reporter, str(error))
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 0
    from .device import quiet_tensorflow

    quiet_tensorflow()
    with quiet_stderr(not reporter.json):
        report = _doctor_facts()
    tf_ok = not report["tensorflow"].startswith("not available")

    from . import weights as weights_module

    weights = args.weights or None
    try:
        status = weights_module.weights_status(args.backbone, weights)
        status["message"] = _weights_message(status, args.backbone, weights)
    except ValueError as error:
        status = {"backbone": args.backbone, "available": False, "message": _one_line(error)}
    report["weights"] = status
    report["ok"] = bool(status.get("available")) and tf_ok

    if reporter.json:
        try:
            reporter.events.write(json.dumps(report, ensure_ascii=True) + "\n")
            reporter.events.flush()
        except OSError:
            pass
    else:
        rows = [
            ("python", report["python"]),
            ("nst-keras", report["nst_keras"]),
            ("tensorflow", report["tensorflow"]),
            ("keras", f"{report['keras']} (backend: {report['keras_backend']})"),
            ("numpy", report["numpy"]),
            ("pillow", report["pillow"]),
            ("device", report["device"]),
            ("GPUs", str(report["gpu_count"])),
            ("weights", ("ok: " if status.get("available") else "MISSING: ") + status["message"]),
        ]
        for name, value in rows:
            print(f"{name:<11} {value}")
        print("ready" if report["ok"] else "not ready: see above")
        sys.stdout.flush()
    return protocol.EXIT_OK if report["ok"] else protocol.EXIT_USER_ERROR


# Entry point --------------------------------------------------------------------------------


def _wants_json(argv: list) -> bool:
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in options


def main(argv=None) -> int:
    """Run the command line; return the exit code."""
    started_at = time.monotonic()
    argv = list(sys.argv[1:] if argv is None else argv)
    json_mode = _wants_json(argv)
    with protocol_stdout() if json_mode else contextlib.nullcontext(None) as events:
        reporter = Reporter(events)
        try:
            if argv[:1] == ["doctor"]:
                return _doctor(argv[1:], reporter)
            return _stylize_command(argv, reporter, started_at)
        except KeyboardInterrupt:
            reporter.event(protocol.CANCELLED, output=None)
            return protocol.EXIT_CANCELLED
        except Exception as error:  # noqa: BLE001 - last resort: never a bare traceback for a user
            return report_exception(error, reporter)
