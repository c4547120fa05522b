"""A stand-in for `python -m nst_keras --json` that speaks the engine protocol (DESIGN.md).

Used by the GIMP tests for the engine's failure modes (the real engine is used for results):
the plug-in's settings point at it through "command_prefix" ([python, this file]); everything
up to and including "nst_keras" on the command line is skipped. NST_FAKE_MODE selects:

  ok      started, progress, preview (when asked), done: the output is the content, colour-inverted
  error   an error event with a one-line message, exit 1
  crash   a traceback on stderr, exit 3
  killed  killed by SIGKILL after the first progress event
  slow    progress until stdin closes or SIGTERM/SIGINT, then cancelled (partial output with
          --keep-partial) and exit 130

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

ERROR_MESSAGE = "style image 'style.png' is damaged and cannot be read (fake engine); expected a complete image file"
CRASH_MARKER = "RuntimeError: fake engine exploded in the optimiser"


def emit(event, **fields):
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def write_result(content, output, bit_depth):
    from PIL import Image, ImageChops

    with Image.open(content) as im:
        im.load()
        rgba = im.convert("RGBA")
    r, g, b, a = rgba.split()
    inverted = Image.merge("RGB", (r, g, b))
    inverted = ImageChops.invert(inverted)
    out = Image.merge("RGBA", (*inverted.split(), a))
    tmp = output + ".part.png"
    out.save(tmp)
    os.replace(tmp, output)


def main(argv):
    if "nst_keras" in argv:
        argv = argv[argv.index("nst_keras") + 1 :]
    parser = argparse.ArgumentParser()
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep-partial", action="store_true")
    parser.add_argument("--preview-every", type=int)
    parser.add_argument("--preview-path")
    parser.add_argument("--bit-depth", type=int, default=8)
    args, _unknown = parser.parse_known_args(argv)
    mode = os.environ.get("NST_FAKE_MODE", "ok")
    if os.environ.get("NST_FAKE_LOG"):  # what the plug-in started: for the tests to check
        with open(os.environ["NST_FAKE_LOG"], "a") as fh:
            record = {"argv": sys.argv, "cwd": os.getcwd(), "pythonpath": os.environ.get("PYTHONPATH")}
            fh.write(json.dumps(record) + "\n")

    stop = threading.Event()

    def on_signal(_sig, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()

    emit("started", protocol=1, version="fake", device="CPU: fake")
    sys.stderr.write("fake engine: starting\n")
    if mode == "error":
        sys.stderr.write("fake engine: about to fail\n")
        emit("error", type="ImageError", message=ERROR_MESSAGE)
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
    steps = 10**9 if mode == "slow" else 6
    for step in range(1, steps + 1):
        if stop.is_set():
            if args.keep_partial:
                write_result(args.content, args.output, args.bit_depth)
                emit("cancelled", output=args.output)
            else:
                emit("cancelled")
            return 130
        if mode == "slow":
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
            eta_s=None if mode == "slow" else float(6 - step),
            elapsed_s=step * 0.05,
        )
        if args.preview_every and args.preview_path and step % args.preview_every == 0:
            write_result(args.content, args.preview_path, 8)
            emit("preview", path=args.preview_path)
        time.sleep(0.1 if mode == "slow" else 0.02)
    write_result(args.content, args.output, args.bit_depth)
    emit("done", output=args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
