"""What people and programs see: protocol events, the progress bar, and a quiet stderr.

- people: a progress bar on stderr (redrawn on a terminal, a line every ~10% otherwise), a final line naming the
  output, and errors as one line `nst-keras: error: ...`;
- programs (`--json`): one JSON event per line on stdout and nothing else there (protocol_stdout moves fd 1 to
  stderr meanwhile, so library chatter cannot corrupt the stream).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import threading
import time

from .. import protocol

PROG = "nst-keras"
TTY_REDRAW_INTERVAL_S = 0.1


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def duration(seconds) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def wxh(size) -> str:
    h, w = size
    return f"{w}x{h}"


class Reporter:
    """Writes protocol events (when --json) and human messages on stderr.

    In --json mode, from the first phase on, a background thread writes a heartbeat whenever no other event was
    written for protocol.HEARTBEAT_S seconds (also while the main thread is busy importing TensorFlow or inside a long
    step), so that a reader can tell a slow engine from a hung one.
    """

    def __init__(self, events=None, started_at: float | None = None):
        self.events = events
        self.quiet = False
        self.on_reader_gone = None  # called once when the event stream breaks (the reader went away)
        self.bar = None
        self.final = None  # the name of the final event (done, error, cancelled) once written
        self.phase_name = None
        self.t0 = time.monotonic() if started_at is None else started_at
        self._lock = threading.Lock()
        self._broken = False
        self._last_write = time.monotonic()
        self._closed = threading.Event()
        self._heartbeat = None

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
            if name in protocol.FINAL_EVENTS:
                if self.final is not None:
                    return  # one final event per run
                self.final = name
            self.events.write(line)
            self.events.flush()
            self._last_write = time.monotonic()
        except (OSError, ValueError):  # broken pipe or closed stream: nobody is listening any more
            self._broken = True
            if self.on_reader_gone is not None:
                self.on_reader_gone()
        finally:
            self._lock.release()

    def phase(self, name: str, message: str) -> None:
        """Enter a phase of the run (protocol.PHASES); the first one starts the heartbeat."""
        if name not in protocol.PHASES:
            raise ValueError(f"phase: expected one of {', '.join(protocol.PHASES)}, received {name!r}")
        self.phase_name = name
        self.event(protocol.PHASE, phase=name, message=message)
        if self.json and self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
            self._heartbeat.start()

    def _beat(self) -> None:
        period = min(0.25, protocol.HEARTBEAT_S / 20)  # a heartbeat comes at most this late
        while not self._closed.wait(period):
            if time.monotonic() - self._last_write >= protocol.HEARTBEAT_S:
                self.event(protocol.HEARTBEAT, timeout=period, elapsed_s=round(time.monotonic() - self.t0, 1))

    def close(self) -> None:
        """Stop the heartbeat (the process is about to end)."""
        self._closed.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=2.0)

    def notice(self, text: str) -> None:
        """A one-line notice a person should read: a notice event in --json mode, a line on stderr otherwise."""
        text = one_line(text)
        if self.json:
            self.event(protocol.NOTICE, message=text)
        else:
            self.note(f"{PROG}: notice: {text}")

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
        message = one_line(message)
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
        head = f"scale {p.scale}/{p.num_scales} {wxh(p.size)}"
        if p.tile:
            head += f" tile {p.tile[0]}/{p.tile[1]}"
        loss = "?" if p.loss is None or p.loss != p.loss else f"{p.loss:.4g}"
        tail = f" step {p.step}/{p.num_steps} loss {loss} elapsed {duration(p.elapsed_s)} ETA {duration(p.eta_s)}"
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
