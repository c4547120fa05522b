"""The command line: `python -m nst_keras CONTENT STYLE [STYLE...] -o OUT` and `python -m nst_keras doctor`.

The style options are generated from the fields of StyleConfig and their metadata, so the
defaults live in one place. Two audiences:

- people: a progress bar on stderr (redrawn on a terminal, a line every ~10% otherwise), a
  final line naming the output, and errors as one line `nst-keras: error: ...`;
- programs (`--json`, the GIMP plug-in): one JSON event per line on stdout and nothing else
  there (see protocol.py): phases from the first second, a heartbeat every 5 s of silence, notices.

Stopping: SIGINT or SIGTERM, and the end of stdin with --stop-on-eof or with --json on a pipe (a script with no stdin
is never stopped by it). Without --keep-partial, SIGTERM or the end of stdin end the process within about 2 s even in
the middle of a step; with it, the run stops at the next step and writes the best image so far.

Exit codes: 0 done, 1 user error, 2 usage error, 3 unexpected error, 130 stopped.
TensorFlow is imported only once a run really starts, so `--help` and usage errors are instant.
"""

from __future__ import annotations

import contextlib
import sys
import time

from .. import protocol
from .args import (
    PREVIEW_SUFFIX,
    UsageError,
    build_doctor_parser,
    build_parser,
    config_flags,
    config_from_args,
    flag_for,
    flag_message,
)
from .display import PROG, ProgressBar, Reporter, protocol_stdout, quiet_stderr
from .doctor import doctor_command
from .errors import error_kind, report_exception
from .run import MIN_SIDE, SIXTEEN_BIT_EXTENSIONS, StylizeCommand, stylize_command
from .stop import StopRequest, watch_stdin

__all__ = [
    "MIN_SIDE",
    "PREVIEW_SUFFIX",
    "PROG",
    "SIXTEEN_BIT_EXTENSIONS",
    "ProgressBar",
    "Reporter",
    "StopRequest",
    "StylizeCommand",
    "UsageError",
    "build_doctor_parser",
    "build_parser",
    "config_flags",
    "config_from_args",
    "error_kind",
    "flag_for",
    "flag_message",
    "main",
    "protocol_stdout",
    "quiet_stderr",
    "report_exception",
    "stylize_command",
    "watch_stdin",
]


def _wants_json(argv: list) -> bool:
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in options


def main(argv=None) -> int:
    """Run the command line; return the exit code."""
    started_at = time.monotonic()
    argv = list(sys.argv[1:] if argv is None else argv)
    json_mode = _wants_json(argv)
    with protocol_stdout() if json_mode else contextlib.nullcontext(None) as events:
        reporter = Reporter(events, started_at)
        try:
            if argv[:1] == ["doctor"]:
                return doctor_command(argv[1:], reporter)
            return stylize_command(argv, reporter, started_at)
        except KeyboardInterrupt:
            reporter.event(protocol.CANCELLED, output=None)
            return protocol.EXIT_CANCELLED
        except Exception as error:  # noqa: BLE001 - last resort: never a bare traceback for a user
            return report_exception(error, reporter)
        finally:
            reporter.close()
