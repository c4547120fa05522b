"""Stopping a run: SIGINT/SIGTERM, the end of stdin, and the event reader going away."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading

from .. import protocol
from .display import PROG, Reporter


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
