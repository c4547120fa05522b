"""The plug-in's windows: the settings dialog (its frames come from nst_options.OPTIONS), the style
it starts with, and the progress window (phases, steps, the time estimate, Cancel, Stop and keep).
Runs in GIMP (gi).
"""

import os

import nst_options
from gi.repository import GimpUi, GLib, GObject, Gtk
from nst_engine import debug

NO_STYLE_MESSAGE = "Choose a style first: a layer to take the style from (it may be hidden), or an image file."


def has_display():
    """Whether GTK windows can be shown (GIMP with its GUI, not gimp-console on a headless machine)."""
    import sys

    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pump_gtk():
    context = GLib.MainContext.default()
    while context.pending():
        context.iteration(False)


def _layers_top_down(layers):
    for layer in layers:
        yield layer
        if layer.is_group():
            yield from _layers_top_down(layer.get_children())


def topmost_other_layer(image, content):
    """The style a new user most likely means: the topmost layer of the image that is not the
    content layer (nor a group), or None when the image has no other layer."""
    for layer in _layers_top_down(image.get_layers()):
        if layer.is_group() or layer.get_id() == content.get_id():
            continue
        return layer
    return None


def has_style(config):
    return config.get_property("style-layer") is not None or config.get_property("style-file") is not None


def _warn(parent, text):
    box = Gtk.MessageDialog(
        transient_for=parent,
        modal=True,
        message_type=Gtk.MessageType.WARNING,
        buttons=Gtk.ButtonsType.OK,
        text=text,
    )
    box.set_title("Neural Style Transfer: no style")
    box.run()
    box.destroy()


def show_dialog(procedure, config):
    """Run the settings dialog until the user cancels (False) or confirms with a style chosen (True)."""
    GimpUi.init("python-fu-nst-keras")
    while True:
        dialog = _build(procedure, config)
        ok = dialog.run()
        if ok and not has_style(config):
            _warn(dialog, NO_STYLE_MESSAGE)
            dialog.destroy()
            continue
        dialog.destroy()
        return ok


def _style_words(config):
    layer, gfile = config.get_property("style-layer"), config.get_property("style-file")
    if layer is not None:
        return f"The style: the layer “{layer.get_name()}”"
    if gfile is not None:
        return f"The style: the file “{gfile.get_basename()}”"
    return "No style chosen yet"


def _set_chooser(chooser, layer):
    try:
        if layer.is_valid():
            chooser.set_drawable(layer)
    except Exception:  # noqa: BLE001 - cosmetic
        pass
    return False


def _build(procedure, config):
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title="Neural Style Transfer")
    intro = dialog.get_label(
        "intro",
        "Paints your layer in the style of another picture. Choose a layer (it may be hidden, or in another "
        "open image) or an image file as the style. The result is added as a new layer above yours, so "
        "nothing is lost.",
        False,
        False,
    )
    intro.set_line_wrap(True)
    intro.set_max_width_chars(60)
    intro.set_xalign(0.0)
    chooser = dialog.get_widget("style-layer", GObject.TYPE_NONE)  # GIMP's own widget: a drawable chooser
    layer = config.get_property("style-layer")
    if isinstance(chooser, GimpUi.DrawableChooser) and layer is not None:
        # GIMP 3.0's chooser can stay blank for a layer set before the dialog opened: set it again once shown.
        GLib.idle_add(_set_chooser, chooser, layer)
    # The style in words, under the chooser (the chooser shows only a thumbnail, blank for a hidden layer).
    chosen = dialog.get_label("style-chosen", _style_words(config), False, False)
    debug("dialog style: " + _style_words(config))
    chosen.set_xalign(0.0)
    config.connect("notify::style-layer", lambda *_: chosen.set_text(_style_words(config)))
    config.connect("notify::style-file", lambda *_: chosen.set_text(_style_words(config)))
    for option in nst_options.OPTIONS:
        if option.slider is not None:
            dialog.get_spin_scale(option.name, option.slider)
    try:  # the variation number only matters with "Same result every time"
        dialog.set_sensitive("variation", True, config, "same-result", False)
    except Exception:  # noqa: BLE001 - cosmetic
        pass
    dialog.get_label("style-title", "Style", False, False)
    dialog.fill_box("style-box", ["style-layer", "style-file", "style-chosen"])
    dialog.fill_frame("style-frame", "style-title", False, "style-box")
    frames = ["intro", "style-frame"]
    for group, title in nst_options.GROUPS:
        dialog.get_label(f"{group}-title", title, False, False)
        dialog.fill_box(f"{group}-box", nst_options.group_names(group))
        dialog.fill_frame(f"{group}-frame", f"{group}-title", False, f"{group}-box")
        frames.append(f"{group}-frame")
    dialog.fill(frames)
    return dialog


class ProgressWindow:
    """A small window with the progress and two buttons: Cancel, Stop and keep result.

    The bar pulses until the first step is done (phases and heartbeats keep it moving); below it
    the current phase or step, the time the run will take once the engine has estimated it, and
    the engine's notices.
    """

    def __init__(self, style_name):
        self.choice = None  # None, "cancel" or "keep"
        self.window = Gtk.Window(title="Neural Style Transfer: running")
        self.window.set_resizable(False)
        self.window.set_border_width(12)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=8)
        self.window.add(box)
        title = Gtk.Label(label=f"Painting your layer in the style of “{style_name}”…", xalign=0.0)
        box.pack_start(title, False, False, 0)
        self.bar = Gtk.ProgressBar()
        self.bar.set_size_request(380, -1)
        self.bar.set_pulse_step(0.08)
        box.pack_start(self.bar, False, False, 0)
        self.label = Gtk.Label(label="Starting the style transfer engine…", xalign=0.0)
        box.pack_start(self.label, False, False, 0)
        self.estimate = Gtk.Label(label="", xalign=0.0)
        box.pack_start(self.estimate, False, False, 0)
        self.notice = Gtk.Label(label="", xalign=0.0)
        self.notice.set_line_wrap(True)
        self.notice.set_max_width_chars(56)
        box.pack_start(self.notice, False, False, 0)
        buttons = Gtk.ButtonBox(orientation=Gtk.Orientation.HORIZONTAL)
        buttons.set_layout(Gtk.ButtonBoxStyle.END)
        buttons.set_spacing(6)
        self.keep_button = Gtk.Button.new_with_mnemonic("_Stop and keep result")
        self.keep_button.set_tooltip_text("Stop now and add the picture as it is so far as a new layer")
        self.cancel_button = Gtk.Button.new_with_mnemonic("_Cancel")
        self.cancel_button.set_tooltip_text("Stop now and leave the image as it was")
        self.keep_button.connect("clicked", self._on_choice, "keep")
        self.cancel_button.connect("clicked", self._on_choice, "cancel")
        buttons.pack_start(self.keep_button, False, False, 0)
        buttons.pack_start(self.cancel_button, False, False, 0)
        box.pack_start(buttons, False, False, 0)
        self.window.connect("delete-event", self._on_delete)
        try:
            GimpUi.window_set_transient(self.window)
        except Exception:  # noqa: BLE001 - cosmetic
            pass
        self.window.show_all()
        self.notice.hide()
        self.estimate.hide()
        self.pulse()

    def _on_choice(self, _button, choice):
        if self.choice is None:
            self.choice = choice
            self.keep_button.set_sensitive(False)
            self.cancel_button.set_sensitive(False)
            self.label.set_text("Stopping…" if choice == "cancel" else "Stopping and keeping the result so far…")

    def _on_delete(self, *_args):
        self._on_choice(None, "cancel")
        return True

    def update(self, fraction, text):
        if self.choice is None:
            self.bar.set_fraction(fraction)
            self.label.set_text(text)

    def status(self, text):
        """A phase: new words, the bar keeps moving."""
        if self.choice is None:
            self.label.set_text(text)

    def set_estimate(self, text):
        if text:
            self.estimate.set_text(text)
            self.estimate.show()

    def add_notice(self, text):
        if text:
            self.notice.set_text(text)
            self.notice.show()

    def pulse(self):
        self.bar.pulse()

    def close(self):
        self.window.destroy()
        pump_gtk()
