"""A stand-in for `python -m nst_keras --json` that speaks the engine protocol (docs/protocol.md).

Used by the GIMP tests for the engine's failure modes (the real engine is used for results):
the plug-in's settings point at it through "command_prefix" ([python, this file]); everything
up to and including "nst_keras" on the command line is skipped. Like the engine it writes a
"starting" phase first, a heartbeat whenever it wrote nothing for NST_FAKE_HEARTBEAT_S (default 5)
seconds, and a `started` event with a time estimate; it stops on end of stdin only with
--stop-on-eof. Previews: with --preview-dir each one is a new preview-NNNN.png, written atomically
and never deleted by it (the spec); with the old --preview-path it rewrites one file in place, in
two pieces, and removes it at the end, as engines before --preview-dir did. NST_FAKE_MODE selects:

  ok         progress, previews (when asked), done: the output is the content, colour-inverted
  error      an error event whose message names the content file's path, exit 1
  crash      a traceback on stderr, exit 3
  killed     killed by SIGKILL after the first progress event
  slow       progress until stdin closes (with --stop-on-eof) or SIGTERM/SIGINT, then cancelled
             (partial output with --keep-partial) and exit 130
  stubborn   like slow, but ignores end of stdin and SIGTERM (only SIGKILL ends it)
  silent     writes `started`, then nothing at all, ignoring end of stdin and SIGTERM: a hung engine
  long-step  one step that lasts 3 s (heartbeats every NST_FAKE_HEARTBEAT_S), then done

Needs Pillow (the test virtualenv has it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

ERROR_MESSAGE = "is damaged and cannot be read (fake engine); expected a complete image file"
CRASH_MARKER = "RuntimeError: fake engine exploded in the optimiser"
NOTICE = "Using the offline network: results differ a little (fake engine)"
ESTIMATE_S = 130.0  # the started event's estimate.total_s

_lock = threading.Lock()
_last_write = [time.monotonic()]


def emit(event, **fields):
    with _lock:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()
        _last_write[0] = time.monotonic()


def error_message(content):
    return f"content image '{content}' {ERROR_MESSAGE}"


def inverted(content):
    from PIL import Image, ImageChops

    with Image.open(content) as im:
        im.load()
        rgba = im.convert("RGBA")
    r, g, b, a = rgba.split()
    rgb = ImageChops.invert(Image.merge("RGB", (r, g, b)))
    return Image.merge("RGBA", (*rgb.split(), a))


def write_result(content, output):
    tmp = output + ".part.png"
    inverted(content).save(tmp)
    os.replace(tmp, output)


class Previews:
    """--preview-dir: preview-0001.png, 0002, ... (atomic, never removed); --preview-path: one file in place."""

    def __init__(self, args):
        self.dir, self.path, self.every, self.count = args.preview_dir, args.preview_path, args.preview_every, 0
        self.max_waiting = 0  # the most announced previews found still unread (not deleted) in the folder

    def maybe(self, content, step):
        if not self.every or step % self.every:
            return
        if self.dir:
            waiting = [n for n in os.listdir(self.dir) if n.startswith("preview-")]
            self.max_waiting = max(self.max_waiting, len(waiting))
            self.count += 1
            path = os.path.join(self.dir, f"preview-{self.count:04d}.png")
            tmp = os.path.join(self.dir, f".preview-{self.count:04d}.part")
            inverted(content).save(tmp, format="PNG")
            os.replace(tmp, path)
            emit("preview", path=path, scale=1, step=step)
        elif self.path:
            import io

            data = io.BytesIO()
            inverted(content).save(data, format="PNG")
            raw = data.getvalue()
            with open(self.path, "wb") as fh:  # in place, in two pieces, like an engine without --preview-dir
                fh.write(raw[: len(raw) // 2])
                fh.flush()
                emit("preview", path=self.path, scale=1, step=step)
                time.sleep(0.05)
                fh.write(raw[len(raw) // 2 :])

    def finish(self):
        if self.dir and os.environ.get("NST_FAKE_LOG"):
            with open(os.environ["NST_FAKE_LOG"], "a") as fh:
                fh.write(
                    json.dumps({"pid": os.getpid(), "previews": self.count, "max_waiting": self.max_waiting}) + "\n"
                )
        if self.path and not self.dir:
            try:
                os.remove(self.path)
            except OSError:
                pass


def main(argv):
    if "nst_keras" in argv:
        argv = argv[argv.index("nst_keras") + 1 :]
    parser = argparse.ArgumentParser()
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep-partial", action="store_true")
    parser.add_argument("--stop-on-eof", action="store_true")
    parser.add_argument("--preview-every", type=int)
    parser.add_argument("--preview-path")
    parser.add_argument("--preview-dir")
    parser.add_argument("--bit-depth", type=int, default=8)
    args, _unknown = parser.parse_known_args(argv)
    mode = os.environ.get("NST_FAKE_MODE", "ok")
    if os.environ.get("NST_FAKE_LOG"):  # what the plug-in started: for the tests to check
        with open(os.environ["NST_FAKE_LOG"], "a") as fh:
            record = {
                "argv": sys.argv,
                "cwd": os.getcwd(),
                "pythonpath": os.environ.get("PYTHONPATH"),
                "pid": os.getpid(),
                "mode": mode,
            }
            fh.write(json.dumps(record) + "\n")
    stubborn = mode in ("stubborn", "silent")
    stop = threading.Event()

    def on_signal(_sig, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, signal.SIG_IGN if stubborn else on_signal)
    signal.signal(signal.SIGINT, signal.SIG_IGN if stubborn else on_signal)

    def watch_stdin():
        sys.stdin.read()
        if args.stop_on_eof and not stubborn:
            stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    if mode == "silent":
        emit("started", protocol=1, version="fake", device="CPU: fake")
        while True:
            time.sleep(1.0)

    heartbeat_s = float(os.environ.get("NST_FAKE_HEARTBEAT_S", "5"))
    start = time.monotonic()

    def heartbeat():
        while True:
            time.sleep(heartbeat_s / 4)
            if time.monotonic() - _last_write[0] >= heartbeat_s:
                emit("heartbeat", elapsed_s=round(time.monotonic() - start, 1))

    emit("phase", phase="starting", message="Starting")
    threading.Thread(target=heartbeat, daemon=True).start()
    emit("phase", phase="loading", message="Loading the network")
    if mode == "ok":
        emit("notice", message=NOTICE)
    emit("started", protocol=1, version="fake", device="CPU: fake", estimate={"total_s": ESTIMATE_S})
    sys.stderr.write("fake engine: starting\n")
    if mode == "error":
        sys.stderr.write("fake engine: about to fail\n")
        emit("error", type="ImageError", message=error_message(args.content))
        return 1
    if mode == "crash":
        sys.stderr.write(
            "Traceback (most recent call last):\n"
            '  File "nst_keras/optimize.py", line 123, in run\n'
            "    step()\n" + CRASH_MARKER + "\n"
        )
        return 3
    if mode == "killed":
        emit("progress", scale=1, num_scales=1, step=1, num_steps=10, loss=1.0, eta_s=5.0, elapsed_s=0.1)
        os.kill(os.getpid(), signal.SIGKILL)
    emit("phase", phase="running", message="Painting")
    if mode == "long-step":
        time.sleep(3.0)
    previews = Previews(args)
    endless = mode in ("slow", "stubborn")
    steps = 10**9 if endless else 6
    for step in range(1, steps + 1):
        if stop.is_set():
            previews.finish()
            if args.keep_partial:
                write_result(args.content, args.output)
                emit("cancelled", output=args.output)
            else:
                emit("cancelled")
            return 130
        if endless:
            scale, num_scales, num_steps, at = 1, 1, 1000, step
        else:
            scale, num_scales, num_steps = (1 if step <= 3 else 2), 2, 3
            at = step if scale == 1 else step - 3
        emit(
            "progress",
            scale=scale,
            num_scales=num_scales,
            step=at,
            num_steps=num_steps,
            loss=1.0 / step,
            eta_s=None if endless else float(6 - step),
            elapsed_s=step * 0.05,
        )
        previews.maybe(args.content, step)
        time.sleep(0.1 if endless else 0.02)
    emit("phase", phase="saving", message="Saving the result")
    write_result(args.content, args.output)
    previews.finish()
    emit("done", output=args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
