"""One run of the filter on one layer: export the layers, run the engine, show its progress and
previews, add the result as a new layer (one undo step). Runs in GIMP (gi).
"""

import json
import os
import shlex
import shutil
import time

import nst_engine
import nst_layers
import nst_options
import protocol
from gi.repository import Gimp
from nst_dialog import ProgressWindow, pump_gtk
from nst_engine import PluginError, debug

PLUGIN_VERSION = "0.1.0"
PARASITE_NAME = "nst-keras-settings"
PREVIEW_EVERY = 10  # steps between live previews (interactive runs)
PULSE_EVERY_S = 0.25  # the bar moves at least this often until the first step is done


class UserCancelled(Exception):
    """The user pressed Cancel: leave the image as it was."""


def result_layer_name(style_name):
    return f"Styled: {style_name}"


class Stylizer:
    """One run of the filter on one layer: export, engine, result layer."""

    def __init__(self, image, layer, values, style_layer, style_file, interactive, plugin_dir):
        self.image = image
        self.layer = layer
        self.values = values
        self.style_layer = style_layer
        self.style_file = style_file
        self.interactive = interactive
        self.plugin_dir = plugin_dir
        self.style_name = style_layer.get_name() if style_layer is not None else nst_layers.style_file_stem(style_file)
        self.layer_name = result_layer_name(self.style_name)
        self.preview_layer = None
        self.preview_dir = None
        self.window = None
        self.engine_version = None
        self.names = {}
        self._last_progress_ui = 0.0
        self._last_pulse = 0.0
        self._stepping = False
        self._previews_on = True

    def run(self):
        settings = nst_engine.read_settings(self.plugin_dir, os.environ)
        nst_layers.check_selection_touches(self.image, self.layer)
        high_bit = nst_layers.is_high_bit(self.image)
        folder = nst_engine.make_temp_folder(settings, os.environ)
        try:
            content = os.path.join(folder, "content.png")
            nst_layers.export_layer(self.layer, content, high_bit)
            if self.style_layer is not None:
                style = os.path.join(folder, "style.png")
                nst_layers.export_layer(self.style_layer, style, high_bit, what="Handing the style to the engine")
            else:
                style = nst_layers.export_style_file(self.style_file, folder, high_bit)
            output = os.path.join(folder, "result.png")
            self.names = {content: "your layer", style: "the style", output: "the result"}
            if self.interactive:
                self.preview_dir = os.path.join(folder, "previews")
                os.mkdir(self.preview_dir, 0o700)
            forward = {"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", "TMPDIR": folder, **settings["env"]}
            argv = nst_engine.build_argv(
                settings,
                content,
                style,
                output,
                nst_options.engine_args(self.values),
                bit_depth=16 if high_bit else 8,
                keep_partial=self.interactive,
                preview=(PREVIEW_EVERY, self.preview_dir) if self.interactive else None,
                extra=os.environ.get("NST_KERAS_EXTRA_ARGS", ""),
                forward_env=forward,
                cwd=folder,
            )
            env = nst_engine.engine_environment(os.environ, settings["env"], tmpdir=folder)
            debug("engine command: " + shlex.join(argv))
            Gimp.progress_init(f"Neural Style Transfer: {self.style_name}")
            Gimp.progress_set_text("Starting the style transfer engine…")
            if self.interactive:
                self.window = ProgressWindow(self.style_name)
            engine = nst_engine.EngineRun(
                argv, env, os.path.join(folder, "engine.log"), cwd=folder, hang_s=settings["hang_timeout_s"]
            )
            try:
                code = engine.run(
                    on_event=self._on_event,
                    pump=self._pump,
                    should_stop=(lambda: self.window.choice) if self.interactive else None,
                    on_skipped_preview=self._drop_preview,
                )
            finally:
                if self.window is not None:
                    self.window.close()
            return self._finish(engine, code, output, nst_engine.log_tail(engine.log_path))
        except BaseException as exc:
            self._remove_preview()
            if isinstance(exc, OSError):  # a file of ours in the temporary folder that the system refused
                raise PluginError(
                    f"Neural Style Transfer could not write its temporary files ({exc.strerror or exc}); "
                    "check that the disk is not full."
                ) from None
            raise
        finally:
            Gimp.progress_end()
            shutil.rmtree(folder, ignore_errors=True)

    # -- engine events ----------------------------------------------------------------------

    def _pump(self):
        now = time.monotonic()
        if not self._stepping and now - self._last_pulse >= PULSE_EVERY_S:
            self._last_pulse = now
            Gimp.progress_pulse()
            if self.window is not None:
                self.window.pulse()
        if self.window is not None:
            pump_gtk()

    def _status(self, text):
        Gimp.progress_set_text(text)
        if self.window is not None:
            self.window.status(text)

    def _on_event(self, event):
        kind = event.get("event")
        if kind == protocol.STARTED:
            self.engine_version = event.get("version")
            text = "Engine started" + (f" on {event['device']}" if event.get("device") else "")
            self._status(text)
            estimate = nst_engine.estimate_text(event)
            if estimate and self.window is not None:
                self.window.set_estimate(estimate)
            if estimate:
                debug("estimate: " + estimate)
        elif kind == protocol.PHASE:
            text = nst_engine.phase_text(event) + "…"
            debug("phase: " + text)
            self._status(text)
        elif kind == protocol.HEARTBEAT:
            if not self._stepping:
                self._pump()
        elif kind == protocol.NOTICE:
            text = nst_engine.plain_message(event.get("message"), self.names)
            debug(f"notice: {text}")
            if text and self.window is not None:
                self.window.add_notice(text)
        elif kind == protocol.PROGRESS:
            self._stepping = True
            now = time.monotonic()
            if now - self._last_progress_ui < 0.1 and event.get("step") != event.get("num_steps"):
                return
            self._last_progress_ui = now
            fraction, text = nst_engine.progress_fraction(event), nst_engine.progress_text(event)
            Gimp.progress_update(fraction)
            Gimp.progress_set_text(text)
            if self.window:
                self.window.update(fraction, text)
        elif kind == protocol.PREVIEW:
            path = nst_engine.announced_preview(event, self.preview_dir)
            if path is None:
                debug(f"ignored a preview event for {event.get('path')!r}")
                return
            try:
                if self.interactive and self.window and self.window.choice is None and self._previews_on:
                    try:
                        self._show_preview(path)
                    except Exception as exc:  # noqa: BLE001 - e.g. the user deleted the preview layer
                        debug(f"previews off: {exc!r}")
                        self._previews_on = False
            finally:
                nst_engine.remove_file(path)  # the plug-in owns announced previews: gone once read

    def _drop_preview(self, event):
        path = nst_engine.announced_preview(event, self.preview_dir)
        if path is not None:
            nst_engine.remove_file(path)

    def _show_preview(self, path):
        if not os.path.isfile(path) or not self.layer.is_valid():
            return
        if self.preview_layer is not None and not self.preview_layer.is_valid():
            self.preview_layer = None  # deleted by the user: make a new one
        width, height = self.layer.get_width(), self.layer.get_height()
        try:
            loaded = nst_layers.load_layer(self.image, path, width, height, self.layer_name + " (preview)")
        except PluginError:
            return  # a preview is a nicety: never fail the run for it
        if self.preview_layer is None:
            _, x, y = self.layer.get_offsets()
            loaded.set_offsets(x, y)
            # The preview layer is not part of the undo history: it is replaced by the result.
            self.image.undo_freeze()
            try:
                self.image.insert_layer(loaded, self.layer.get_parent(), self.image.get_item_position(self.layer))
                nst_layers.add_result_mask(self.image, self.layer, loaded)
            finally:
                self.image.undo_thaw()
            self.preview_layer = loaded
            debug("preview layer created")
        else:
            try:
                nst_layers.copy_pixels(loaded, self.preview_layer)
            finally:
                loaded.delete()
            debug("preview layer updated")
        Gimp.displays_flush()

    def _remove_preview(self):
        if self.preview_layer is not None and self.preview_layer.is_valid() and self.image.is_valid():
            try:
                self.image.undo_freeze()
                try:
                    self.image.remove_layer(self.preview_layer)
                finally:
                    self.image.undo_thaw()
                Gimp.displays_flush()
                debug("preview layer removed")
            except Exception:  # noqa: BLE001 - the layer may be gone already
                pass
        self.preview_layer = None

    # -- result -----------------------------------------------------------------------------

    def _finish(self, engine, code, output, tail):
        keep = self.window is not None and self.window.choice == "keep"
        debug(f"engine exit code {code}, stop requested: {engine.stop_requested}, keep: {keep}, hung: {engine.hung}")
        if engine.hung:
            raise PluginError(nst_engine.hang_message(engine.hang_s))
        if engine.stop_requested and not keep:
            raise UserCancelled()
        done = engine.event(protocol.DONE)
        cancelled = engine.event(protocol.CANCELLED)
        result = None
        if code == protocol.EXIT_OK and done is not None:
            result = done.get("output") or output
        elif keep and cancelled is not None and cancelled.get("output"):
            result = cancelled.get("output")
        elif keep and code == protocol.EXIT_OK and os.path.isfile(output):
            result = output  # finished before the stop request arrived
        if result is None:
            if keep:
                raise UserCancelled()  # stopped before a first step finished: nothing to keep
            error = engine.event(protocol.ERROR)
            if error is not None and error.get("message"):
                error = dict(error, message=nst_engine.plain_message(error["message"], self.names))
            raise PluginError(nst_engine.failure_message(code, error, tail))
        if not os.path.isfile(result):
            raise PluginError("The style transfer engine reported a result but wrote no picture")
        if not self.image.is_valid() or not self.layer.is_valid():
            raise PluginError("The image or your layer was closed or deleted while the style transfer ran")
        self._remove_preview()
        return self._add_result(result)

    def _add_result(self, path):
        image, layer = self.image, self.layer
        width, height = layer.get_width(), layer.get_height()
        _, x, y = layer.get_offsets()
        Gimp.context_push()
        Gimp.context_set_interpolation(Gimp.InterpolationType.CUBIC)
        image.undo_group_start()
        new = None
        try:
            new = nst_layers.load_layer(image, path, width, height, self.layer_name)
            if layer.has_alpha():
                nst_layers.copy_alpha(layer, new)
            new.set_offsets(x, y)
            image.insert_layer(new, layer.get_parent(), image.get_item_position(layer))
            nst_layers.add_result_mask(image, layer, new)
            record = nst_options.settings_record(self.values, self.style_name, PLUGIN_VERSION, self.engine_version)
            data = json.dumps(record, sort_keys=True).encode("utf-8")
            new.attach_parasite(
                Gimp.Parasite.new(PARASITE_NAME, Gimp.PARASITE_PERSISTENT | Gimp.PARASITE_UNDOABLE, list(data))
            )
        except BaseException:
            if new is not None and new.get_image() is not None:
                try:
                    image.remove_layer(new)
                except Exception:  # noqa: BLE001
                    pass
            raise
        finally:
            image.undo_group_end()
            Gimp.context_pop()
        Gimp.displays_flush()
        return new
