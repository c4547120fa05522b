"""Stopping a run: SIGINT/SIGTERM, the end of stdin, and the event reader going away."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import sys
import threading

from .. import protocol
from .display import PROG, Reporter

FAST_STOP_GRACE_S = 1.0  # a fast stop lets the run end by itself for this long, then ends the process at once


def stdin_is_pipe() -> bool:
    """True when fd 0 is a pipe (FIFO); False for a terminal, /dev/null, a file, a socket or no stdin at all."""
    try:
        return stat.S_ISFIFO(os.fstat(0).st_mode)
    except (OSError, ValueError):
        return False


def watches_stdin(json_mode: bool, stop_on_eof: bool) -> bool:
    """Whether the end of stdin stops the run: with --stop-on-eof, or with --json when stdin is a pipe.

    `--json </dev/null` (cron, a service, CI), a closed stdin or a terminal never cancel a run.
    """
    return stop_on_eof or (json_mode and stdin_is_pipe())


def watch_stdin(request: StopRequest) -> None:
    """The reader closes our stdin to ask for a stop. Runs in a daemon thread."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:  # no usable stdin: nothing to watch
        return
    request.request("stdin closed", fast=True)


class StopRequest:
    """SIGINT/SIGTERM (and the end of stdin when watched) set `event`; a second SIGINT exits at once with 130.

    With `fast` (no --keep-partial: nothing is to be written), SIGTERM and the end of stdin end the process within
    about FAST_STOP_GRACE_S seconds even in the middle of a long step: the run gets that long to stop by itself at
    its next step, then a helper thread emits `cancelled` and exits with 130, unless the output is being written
    (`saving()`), which is let finish. SIGINT always waits for the next step (a second one quits at once).
    A wake-up socket lets a helper thread see signals even while the main thread is busy inside TensorFlow.
    """

    def __init__(self, reporter: Reporter, watch_stdin_eof: bool = False, fast: bool = False):
        self.event = threading.Event()
        self.reporter = reporter
        self.watch_stdin_eof = watch_stdin_eof
        self.fast = fast
        self.cleanup = []  # callables run before an immediate exit
        self._sigints = 0
        self._requested = False  # a stop was asked for (the note is printed once)
        self._old_handlers = {}
        self._old_wakeup = None
        self._sockets = None
        self._thread = None
        self._forcer = None
        self._finished = threading.Event()
        self._saving = threading.Lock()
        reporter.on_reader_gone = self.event.set

    def is_set(self) -> bool:
        return self.event.is_set()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._install_signals()
        if self.watch_stdin_eof:
            threading.Thread(target=watch_stdin, args=(self,), name="stdin", daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._finished.set()
        self._restore_signals()
        return False

    @contextlib.contextmanager
    def saving(self):
        """While the output is written, a fast stop waits for it instead of ending the process."""
        with self._saving:
            yield

    def request(self, reason: str, *, fast: bool = False, hint: str = "") -> None:
        """Ask the run to stop (`reason` is printed once); `fast` ends the process soon when self.fast."""
        fast = fast and self.fast
        if not self._requested:
            self._requested = True
            how = "stopping" if fast else "stopping after the current step"
            self.reporter.note(f"{PROG}: {reason}: {how}{hint}")
        self.event.set()
        if fast and self._forcer is None:
            self._forcer = threading.Thread(target=self._force_after_grace, name="fast-stop", daemon=True)
            self._forcer.start()

    def end_process_if_fast(self, code: int) -> None:
        """After a fast stop was asked for and reported: end the process now (interpreter shutdown with TensorFlow
        loaded can take seconds). Everything the run writes was already flushed; nothing else is to be written."""
        if self._forcer is None:
            return
        self.reporter.close()
        for stream in (sys.stdout, sys.stderr, self.reporter.events):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)

    def _force_after_grace(self) -> None:
        if self._finished.wait(FAST_STOP_GRACE_S):
            return
        with self._saving:  # never end the process while the output is being written
            if self._finished.is_set() or self.reporter.final is not None:
                return  # the run ended (or is reporting its end) by itself
            self._exit_now("stopped; nothing written")

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
                self._exit_now("stopped at once; nothing written")
            self.request("interrupted", hint=" (press Ctrl+C again to quit at once)")
        elif signum == getattr(signal, "SIGTERM", None):
            self.request("terminated", fast=True)

    def _exit_now(self, message: str) -> None:
        for fn in self.cleanup:
            with contextlib.suppress(Exception):
                fn()
        self.reporter.event(protocol.CANCELLED, timeout=0.5, output=None)
        with contextlib.suppress(OSError):
            os.write(2, f"\n{PROG}: {message}\n".encode())
        os._exit(protocol.EXIT_CANCELLED)
