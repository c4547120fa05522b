"""The engine's machine-readable protocol: JSON events on stdout and exit codes.

Standard library only. The GIMP plug-in (which runs in GIMP's own Python, without this
package) speaks the same protocol; tests check that its copy of these constants agrees.

Every event is one JSON object on one line of stdout, flushed at once. Nothing else is
written to stdout in --json mode. Readers ignore events (and keys) they do not know.
"""

from __future__ import annotations

import json
import math
from typing import IO, Any

PROTOCOL_VERSION = 1

# Exit codes.
EXIT_OK = 0
EXIT_USER_ERROR = 1  # bad input, missing weights, ...: a clear one-line message
EXIT_USAGE = 2  # bad command line (argparse)
EXIT_UNEXPECTED = 3  # a bug or an environment failure: message plus log on stderr
EXIT_CANCELLED = 130  # stopped by SIGINT, SIGTERM or the end of stdin (with --stop-on-eof, or --json on a pipe)

# Event names.
STARTED = "started"
PROGRESS = "progress"
PREVIEW = "preview"
DONE = "done"
ERROR = "error"
CANCELLED = "cancelled"
PHASE = "phase"  # {"phase": one of PHASES, "message": a short sentence for a person}
HEARTBEAT = "heartbeat"  # {"elapsed_s": seconds since the start}: written when nothing else was for HEARTBEAT_S
NOTICE = "notice"  # {"message": a one-line notice a person should see}

EVENTS = (STARTED, PROGRESS, PREVIEW, DONE, ERROR, CANCELLED, PHASE, HEARTBEAT, NOTICE)
FINAL_EVENTS = (DONE, ERROR, CANCELLED)  # the last event of a run

# Phases, in the order a run goes through them ("starting" comes within a second, before TensorFlow is imported).
PHASES = ("starting", "loading", "preparing", "planning", "running", "saving")

HEARTBEAT_S = 5.0  # a heartbeat follows this many seconds without any other event
HUNG_AFTER_S = 60.0  # a reader that sees no line for this long may declare the engine hung

# Previews with --preview-dir: a new file per preview, DIR/preview-NNNN.png, written atomically and announced only
# after the rename; the engine never deletes, truncates or overwrites a file there (the reader deletes each one).
PREVIEW_NAME = "preview-{:04d}.png"


def _clean(value: Any) -> Any:
    """Make a value JSON-safe: NaN and infinities become None, tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def encode_event(event: str, **fields: Any) -> str:
    """Return one protocol line (without the newline) for `event` with `fields`."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
    payload = {"event": event}
    payload.update(_clean(fields))
    return json.dumps(payload, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def write_event(stream: IO[str], event: str, **fields: Any) -> None:
    """Write one event line to `stream` and flush it."""
    stream.write(encode_event(event, **fields) + "\n")
    stream.flush()


def decode_event(line: str) -> dict | None:
    """Parse one line of engine output; None for a line that is not a protocol event."""
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
