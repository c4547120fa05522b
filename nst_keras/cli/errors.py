"""Error kinds of the protocol and the one-line messages a person reads; exit codes 1 and 3."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from .. import protocol
from .display import Reporter, one_line

_USER_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


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
    return one_line(str(exc)) or type(exc).__name__


def report_exception(exc: BaseException, reporter: Reporter, config=None) -> int:
    """Report an exception as the protocol says; return the exit code (1 user error, 3 unexpected)."""
    kind = error_kind(exc)
    if kind != "internal":
        reporter.error(kind, _user_message(exc, kind, config))
        if os.environ.get("NST_KERAS_DEBUG"):
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        return protocol.EXIT_USER_ERROR
    summary = one_line(f"{type(exc).__name__}: {exc}")
    if len(summary) > 300:
        summary = summary[:297] + "..."
    reporter.error("internal", f"unexpected error: {summary} (please report it, with the log below)")
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    sys.stderr.flush()
    return protocol.EXIT_UNEXPECTED


def usage_error(parser: argparse.ArgumentParser, reporter: Reporter, message: str) -> int:
    parser.print_usage(sys.stderr)
    reporter.note(f"{parser.prog}: error: {message}")
    reporter.event(protocol.ERROR, type="usage", message=one_line(message))
    return protocol.EXIT_USAGE
