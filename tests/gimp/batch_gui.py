"""GIMP batch script for the full GIMP (gimp-3.0 under Xvfb): the plug-in's interactive runs.

Driven together with gui_driver.py, which presses the buttons. Reads the JSON spec named by
NST_TEST_SPEC: {"plugin_dir", "results", "inject_message", "photo", "style", "dialog_only",
"runs": [{"name", "settings", "action", "mode", "clicks"}, ...]}.
Builds one image with a display, then for each run writes the plug-in's settings and calls
python-fu-nst-keras in INTERACTIVE mode (the dialog appears; the driver clicks OK, then lets the
run finish, or presses Cancel or "Stop and keep result"). After the first run it checks that the
whole change is one undo step by pressing Ctrl+Z / Ctrl+Y in the image window (xdotool).
Results go to the "results" JSON. Runs in GIMP's Python (stdlib + gi).
"""

import json
import os
import subprocess
import sys
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

SPEC = json.load(open(os.environ["NST_TEST_SPEC"]))
FMT = "R'G'B'A u8"


def log(*args):
    print("[gui-batch]", *args, file=sys.stderr, flush=True)


def fill(drawable, pixel):
    w, h = drawable.get_width(), drawable.get_height()
    data = bytearray()
    for y in range(h):
        for x in range(w):
            data.extend(pixel(x, y))
    buf = drawable.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), FMT, bytes(data))
    buf.flush()
    drawable.update(0, 0, w, h)


def layers(image):
    return [
        {"name": layer.get_name(), "has_mask": layer.get_mask() is not None, "id": layer.get_id()}
        for layer in image.get_layers()
    ]


def key(window_name, keys):
    """Send keys to the GIMP image window (found by its title)."""
    for _ in range(20):  # a window closing during the search makes xdotool fail (BadWindow): retry
        found = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--name", window_name], capture_output=True, text=True
        )
        wid = found.stdout.split()
        if wid:
            break
        time.sleep(0.5)
    if not wid:
        raise RuntimeError(
            f"no window named {window_name!r} (DISPLAY={os.environ.get('DISPLAY')!r}): {found.stderr.strip()}"
        )
    subprocess.run(["xdotool", "windowfocus", "--sync", wid[0]], check=False, timeout=10)
    time.sleep(0.3)
    subprocess.run(["xdotool", "key", "--window", wid[0], keys], check=True, timeout=10)
    time.sleep(1.5)


def write_settings(settings):
    path = os.path.join(SPEC["plugin_dir"], "nst-keras-settings.json")
    with open(path, "w") as fh:
        json.dump(settings, fh)


def build_test_image():
    """The tests' image: a 128x96 photo layer at (16, 12), a hidden 64x64 style layer above, an ellipse selected."""
    image = Gimp.Image.new(160, 120, Gimp.ImageBaseType.RGB)
    image.undo_disable()
    photo = Gimp.Layer.new(image, "Photo", 128, 96, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(photo, None, 0)
    photo.set_offsets(16, 12)
    fill(photo, lambda x, y: ((x * 2) % 256, (y * 2) % 256, 128, 255))
    style = Gimp.Layer.new(image, "Starry", 64, 64, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(style, None, 0)
    fill(style, lambda x, y: (255, 200, 0, 255) if (x // 8 + y // 8) % 2 else (20, 40, 200, 255))
    style.set_visible(False)
    image.select_ellipse(Gimp.ChannelOps.REPLACE, 30, 20, 100, 80)
    image.undo_enable()
    image.set_selected_layers([photo])
    return image, photo, style


def open_layers(photo_path, style_path):
    """The photo file, with the style file above it as a hidden layer (for scripts/gimp_screenshot.py)."""
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(photo_path))
    image.undo_disable()
    photo = image.get_layers()[0]
    photo.set_name("Photo")
    style = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(style_path))
    style.set_name(os.path.splitext(os.path.basename(style_path))[0])
    image.insert_layer(style, None, 0)
    style.set_visible(False)
    image.undo_enable()
    image.set_selected_layers([photo])
    return image, photo, style


if SPEC.get("photo"):
    image, photo, style = open_layers(SPEC["photo"], SPEC["style"])
else:
    image, photo, style = build_test_image()
display = Gimp.Display.new(image)
Gimp.displays_flush()
time.sleep(1.0)

# The detector's self-check: GIMP shows this as a message box, which the driver must find.
if SPEC.get("inject_message"):
    Gimp.message(SPEC["inject_message"])

results = {"runs": {}}
proc = Gimp.get_pdb().lookup_procedure("python-fu-nst-keras")
for index, run in enumerate(SPEC["runs"]):
    write_settings(run["settings"])
    before = layers(image)
    record = {"before": before}
    try:
        cfg = proc.create_config()
        cfg.set_property("image", image)
        cfg.set_core_object_array("drawables", [photo])
        if run.get("mode") == "last-values":
            # Filters > Repeat: no dialog, the last values (the style layer is recalled by the plug-in)
            cfg.set_property("run-mode", Gimp.RunMode.WITH_LAST_VALS)
        else:
            # No style layer is passed: the dialog starts with the topmost other layer (first run) or
            # the one of the last run (Re-Show), and the test checks which one was used. (GIMP gives an
            # interactive run the last values, whatever the caller sets: the driver clicks to change them.)
            cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
        log("run", run["name"])
        start = time.monotonic()
        result = proc.run(cfg)
        record["seconds"] = round(time.monotonic() - start, 1)
        status = result.index(0)
        record["status"] = status.value_nick
        record["message"] = Gimp.get_pdb().get_last_error() if status != Gimp.PDBStatusType.SUCCESS else None
        record["after"] = layers(image)
        if status == Gimp.PDBStatusType.SUCCESS:
            new = result.index(1)
            parasite = new.get_parasite("nst-keras-settings")
            record["new"] = {
                "name": new.get_name(),
                "offsets": list(new.get_offsets()[1:]),
                "size": [new.get_width(), new.get_height()],
                "has_mask": new.get_mask() is not None,
                "parasite": json.loads(bytes(parasite.get_data()).decode()) if parasite else None,
            }
        # One undo step: Ctrl+Z takes the whole change back, Ctrl+Y brings it back. After the
        # first run a second Ctrl+Z must change nothing (the image was built with undo off). After
        # a cancelled run Ctrl+Z must undo the previous run's layer (the preview left no step).
        if SPEC.get("dialog_only"):  # scripts/gimp_screenshot.py: the dialog was only photographed
            raise StopIteration
        title = "Untitled"
        key(title, "ctrl+z")
        record["after_undo"] = layers(image)
        if index == 0:
            key(title, "ctrl+z")
            record["after_second_undo"] = layers(image)
        key(title, "ctrl+y")
        record["after_redo"] = layers(image)
    except StopIteration:
        pass
    except Exception:
        record["exception"] = traceback.format_exc()
    log("->", record.get("status"), record.get("message"), record.get("exception"))
    results["runs"][run["name"]] = record
    with open(SPEC["results"], "w") as fh:
        json.dump(results, fh, indent=1)
