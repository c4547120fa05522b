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
EXIT_CANCELLED = 130  # stopped by stdin EOF, SIGINT or SIGTERM

# Event names.
STARTED = "started"
PROGRESS = "progress"
PREVIEW = "preview"
DONE = "done"
ERROR = "error"
CANCELLED = "cancelled"

EVENTS = (STARTED, PROGRESS, PREVIEW, DONE, ERROR, CANCELLED)


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
