#!/usr/bin/env python3
"""Neural Style Transfer for GIMP 3: paint a layer in the style of another picture.

Filters > Artistic > Neural Style Transfer... exports the selected layer and the style (a layer
of any open image, or an image file) to a private temporary folder, runs the nst-keras engine
(`python -m nst_keras --json`, in its own Python with TensorFlow) and adds the result as a new
layer directly above the original, with the same position and size, masked by the layer's own
mask and the selection. The whole change is one undo step.

GIMP runs this file; the folder holds its modules (GIMP's own Python: standard library + gi):
    nst_options.py   the OPTIONS table: PDB arguments, dialog frames, engine flags, stored record
    nst_engine.py    launch settings, command line, the engine process (events, stop, hang watch)
    nst_layers.py    layers to PNG and back, alpha, the result's mask
    nst_dialog.py    the settings dialog and the progress window
    nst_stylize.py   one run: export, engine, previews, the result layer
    protocol.py      a copy of nst_keras/protocol.py, put here by the installer (not in the repository)

It finds the engine through `nst-keras-settings.json` next to this file, written by install/install.py:

    {"python": "/path/to/venv/bin/python",   # the engine's interpreter
     "command_prefix": [],                    # e.g. ["flatpak-spawn", "--host"] for Flatpak GIMP
     "env": {},                               # extra environment variables for the engine
     "tmpdir": null,                          # optional: where the private temp folders go
     "hang_timeout_s": 60}                    # optional: silence after which the engine counts as hung

With flatpak-spawn as the prefix, "env", TMPDIR and the working folder are passed as its --env= and
--directory= options, and the temp folders go to GIMP's cache folder (the sandbox's /tmp is not
the host's).

Environment variables: NST_KERAS_PYTHON overrides "python"; NST_KERAS_EXTRA_ARGS (advanced, used
by the tests) is split like a shell command line and appended to the engine's arguments, e.g.
"--iterations 2 --min-size 32"; NST_KERAS_HANG_TIMEOUT_S (default 60) is how long the engine may
stay silent before it is declared hung; NST_KERAS_DEBUG=1 prints what the plug-in does (the
engine's command line, preview layer updates, the engine's exit code) to GIMP's terminal.

Settings' "env" is applied after GIMP's PYTHONPATH and PYTHONHOME are removed, so it may set
PYTHONPATH (e.g. to run the engine from a source checkout). The engine gets the run's private
temporary folder as TMPDIR; the folder is removed after every run, whatever its outcome.
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the plug-in's folder (the uninstaller removes what it put)
PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
if PLUGIN_DIR not in sys.path:
    sys.path.insert(0, PLUGIN_DIR)

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Gtk", "3.0")
from gi.repository import Gimp, GimpUi, GLib, GObject  # noqa: E402

try:
    import protocol  # noqa: F401,E402 - the engine's protocol module, copied in by the installer
except ImportError:
    protocol = None

PROCEDURE_NAME = "python-fu-nst-keras"
LAST_STYLE_PARASITE = "nst-keras-last-style-layer"
BROKEN_INSTALL = (
    "The nst-keras plug-in is incomplete: protocol.py is missing from its folder {}; run install/install.py again"
)


def remember_style_layer(layer):
    """Keep the style layer's id for this GIMP session (a global parasite: no undo, not saved)."""
    try:
        Gimp.attach_parasite(Gimp.Parasite.new(LAST_STYLE_PARASITE, 0, list(str(layer.get_id()).encode())))
    except Exception:  # noqa: BLE001 - a convenience only
        pass


def recall_style_layer():
    try:
        parasite = Gimp.get_parasite(LAST_STYLE_PARASITE)
        if parasite is None:
            return None
        layer = Gimp.Layer.get_by_id(int(bytes(parasite.get_data()).decode()))
        return layer if layer is not None and layer.is_valid() else None
    except Exception:  # noqa: BLE001 - a convenience only
        return None


def _error(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def _style_layer_usable(layer):
    try:
        return layer is not None and layer.is_valid()
    except Exception:  # noqa: BLE001
        return False


def run_filter(procedure, run_mode, image, drawables, config, _data):
    if protocol is None:
        return _error(procedure, BROKEN_INSTALL.format(PLUGIN_DIR))
    import nst_dialog
    import nst_options
    from nst_engine import PluginError
    from nst_stylize import Stylizer, UserCancelled

    # Failed PDB calls are the plug-in's to report in its own words, not as GIMP message boxes.
    Gimp.get_plug_in().set_pdb_error_handler(Gimp.PDBErrorHandler.PLUGIN)
    if len(drawables) != 1:
        return _error(procedure, "Neural Style Transfer works on one layer: select exactly one layer")
    layer = drawables[0]
    if isinstance(layer, Gimp.LayerMask):
        layer = Gimp.Layer.from_mask(layer)
    if not isinstance(layer, Gimp.Layer):
        return _error(procedure, "Neural Style Transfer works on a layer; select a layer (not a channel or path)")
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    repeat = run_mode == Gimp.RunMode.WITH_LAST_VALS
    if (interactive or repeat) and not _style_layer_usable(config.get_property("style-layer")):
        config.set_property("style-layer", None)
        # GIMP cannot store a layer in the last values: take the one of the last run in this session,
        # or else (a first run) the topmost other layer of the image.
        if config.get_property("style-file") is None:
            style = recall_style_layer()
            if style is None and interactive:
                style = nst_dialog.topmost_other_layer(image, layer)
            if style is not None:
                config.set_property("style-layer", style)
    if interactive and not nst_dialog.show_dialog(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    # Filters > Repeat (with last values) gets the progress window too when there is a screen.
    with_ui = interactive or (repeat and nst_dialog.has_display())
    if with_ui and not interactive:
        GimpUi.init(PROCEDURE_NAME)
    style_layer = config.get_property("style-layer")
    style_file = config.get_property("style-file")
    if style_layer is None and style_file is None:
        return _error(procedure, nst_dialog.NO_STYLE_MESSAGE)
    if style_layer is not None and style_layer.get_id() == layer.get_id():
        return _error(procedure, "The style layer is your layer itself: choose another layer or a file as the style")
    values = nst_options.read_values(config)
    try:
        new_layer = Stylizer(image, layer, values, style_layer, style_file, with_ui, PLUGIN_DIR).run()
        if style_layer is not None:
            remember_style_layer(style_layer)
    except UserCancelled:
        Gimp.displays_flush()
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    except PluginError as exc:
        return _error(procedure, str(exc))
    return Gimp.ValueArray.new_from_values(
        [GObject.Value(Gimp.PDBStatusType, Gimp.PDBStatusType.SUCCESS), GObject.Value(Gimp.Layer, new_layer)]
    )


class NstKeras(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROCEDURE_NAME]

    def do_set_i18n(self, _name):
        return False, None, None

    def do_create_procedure(self, name):
        import nst_options

        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_filter, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("Neural Style Transfer...")
        procedure.add_menu_path("<Image>/Filters/Artistic")
        procedure.set_documentation(
            "Paint a layer in the style of another picture",
            "Neural style transfer (Gatys et al.): repaints the selected layer with the brush strokes, "
            "textures and colours of a style picture (a layer or an image file) and adds the result as a "
            "new layer above it, masked by the layer's mask and the selection. Runs the nst-keras engine.",
            name,
        )
        procedure.set_attribution("nst-keras contributors", "MIT licence", "2026")
        rw = GObject.ParamFlags.READWRITE
        procedure.add_layer_argument(
            "style-layer",
            "Style la_yer",
            "The layer whose look is copied (it may be hidden, or in another open image). "
            "Leave empty to use a style file.",
            True,
            rw,
        )
        procedure.add_file_argument(
            "style-file",
            "Style _file",
            "A picture file whose look is copied, used when no style layer is chosen",
            Gimp.FileChooserAction.OPEN,
            True,
            None,
            rw,
        )
        nst_options.add_arguments(procedure, Gimp, GObject)
        procedure.add_layer_return_value("styled-layer", "Styled layer", "The new layer", False, rw)
        return procedure


if __name__ == "__main__":
    Gimp.main(NstKeras.__gtype__, sys.argv)
