"""GIMP batch script (run by gimp-console-3.0 through python-fu-eval): the plug-in's PDB cases.

Reads the JSON spec named by the environment variable NST_TEST_SPEC:
    {"plugin_dir": ..., "results": ..., "tmpdir": ..., "cases": [{"name", "image", "settings", "args"}, ...]}
For each case it builds a small image, writes the plug-in's settings file (or removes it), calls
python-fu-nst-keras non-interactively and records what happened (status, message, layer tree
before and after, pixel statistics, mask values, parasite, temp folder contents) in the results
JSON that the pytest side asserts on. Runs in GIMP's Python (stdlib + gi), not in the test venv.
"""

import hashlib
import json
import os
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
    print("[batch]", *args, file=sys.stderr, flush=True)


def read_rgba(drawable):
    w, h = drawable.get_width(), drawable.get_height()
    data = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, FMT, Gegl.AbyssPolicy.CLAMP)
    return bytes(data), w, h


def read_gray(drawable):
    w, h = drawable.get_width(), drawable.get_height()
    return bytes(drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "Y u8", Gegl.AbyssPolicy.CLAMP))


def write_rgba(drawable, pixel):
    """Fill a drawable from pixel(x, y) -> (r, g, b, a) bytes values."""
    w, h = drawable.get_width(), drawable.get_height()
    data = bytearray()
    for y in range(h):
        for x in range(w):
            data.extend(pixel(x, y))
    buf = drawable.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), FMT, bytes(data))
    buf.flush()
    drawable.update(0, 0, w, h)


def write_gray(drawable, value):
    w, h = drawable.get_width(), drawable.get_height()
    data = bytes(value(x, y) for y in range(h) for x in range(w))
    buf = drawable.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), "Y u8", data)
    buf.flush()
    drawable.update(0, 0, w, h)


def fake_alive(settings):
    """Whether the fake engine this case started still runs (its pid from NST_FAKE_LOG)."""
    log_path = ((settings or {}).get("env") or {}).get("NST_FAKE_LOG")
    if not log_path or not os.path.exists(log_path):
        return None
    pid = [json.loads(line) for line in open(log_path).read().splitlines()][-1]["pid"]
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def digest(drawable):
    return hashlib.sha256(read_rgba(drawable)[0]).hexdigest()


def layer_tree(image):
    out = []

    def walk(layers, parent):
        for layer in layers:
            _, x, y = layer.get_offsets()
            out.append(
                {
                    "id": layer.get_id(),
                    "name": layer.get_name(),
                    "parent": parent,
                    "offsets": [x, y],
                    "size": [layer.get_width(), layer.get_height()],
                    "visible": layer.get_visible(),
                    "has_mask": layer.get_mask() is not None,
                    "digest": None if layer.is_group() else digest(layer),
                }
            )
            if layer.is_group():
                walk(layer.get_children(), layer.get_name())

    walk(image.get_layers(), None)
    return out


def find(image, layer_id):
    for layer in all_layers(image):
        if layer.get_id() == layer_id:
            return layer
    return None


def all_layers(image):
    out = []

    def walk(layers):
        for layer in layers:
            out.append(layer)
            if layer.is_group():
                walk(layer.get_children())

    walk(image.get_layers())
    return out


# -- images -----------------------------------------------------------------------------------


def content_pixel(x, y):
    """A colourful gradient with a transparent left quarter (alpha 0) and a half-transparent strip."""
    a = 0 if x < 16 else (128 if y < 4 else 255)
    return (min(255, x * 4) % 256, (y * 5) % 256, (x * y) % 256, a)


def style_pixel(x, y):
    return (255, 200, 0, 255) if (x // 4 + y // 4) % 2 else (20, 40, 200, 255)


def build(kind):
    """(image, content layer, style layer or None) for one image kind."""
    base, precision = Gimp.ImageBaseType.RGB, Gimp.Precision.U8_NON_LINEAR
    if kind == "gray":
        base = Gimp.ImageBaseType.GRAY
    elif kind == "u16":
        precision = Gimp.Precision.U16_NON_LINEAR
    elif kind == "float":
        precision = Gimp.Precision.FLOAT_LINEAR
    image = Gimp.Image.new_with_precision(100, 80, base, precision)
    image.undo_disable()
    gray = base == Gimp.ImageBaseType.GRAY
    layer_type = Gimp.ImageType.GRAYA_IMAGE if gray else Gimp.ImageType.RGBA_IMAGE
    background = Gimp.Layer.new(image, "Background", 100, 80, layer_type, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(background, None, 0)
    write_rgba(background, lambda x, y: (230, 230, 230, 255))
    parent = None
    if kind == "group":
        parent = Gimp.GroupLayer.new(image, "Group")
        image.insert_layer(parent, None, 0)
    content = Gimp.Layer.new(image, "Photo", 64, 48, layer_type, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(content, parent, 0)
    content.set_offsets(20, 12)
    write_rgba(content, content_pixel)
    style = Gimp.Layer.new(image, "Starry", 40, 56, layer_type, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(style, None, 0)
    style.set_offsets(50, 5)
    write_rgba(style, style_pixel)
    style.set_visible(False)
    if kind == "masked":
        mask = content.create_mask(Gimp.AddMaskType.WHITE)
        content.add_mask(mask)
    if kind in ("layer_mask", "layer_mask_selection"):
        # The layer's own mask hides its left part (layer x < 36) and half-hides its bottom rows.
        mask = content.create_mask(Gimp.AddMaskType.WHITE)
        content.add_mask(mask)
        write_gray(mask, lambda x, y: 0 if x < 36 else (128 if y >= 40 else 255))
    if kind in ("selection", "layer_mask_selection"):
        # Image coordinates: the layer spans x 20..83, y 12..59.
        image.select_rectangle(Gimp.ChannelOps.REPLACE, 40, 20, 30, 30)
        Gimp.Selection.feather(image, 8.0)
    if kind == "selection_outside":
        image.select_rectangle(Gimp.ChannelOps.REPLACE, 86, 62, 10, 10)  # beside the layer, not on it
    image.undo_enable()
    return image, content, style


def write_style_file(path):
    image = Gimp.Image.new(40, 40, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(image, "s", 40, 40, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
    write_rgba(layer, style_pixel)
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(path), None)
    image.delete()


# -- running ----------------------------------------------------------------------------------


def write_settings(settings):
    path = os.path.join(SPEC["plugin_dir"], "nst-keras-settings.json")
    if settings is None:
        if os.path.exists(path):
            os.remove(path)
    else:
        with open(path, "w") as fh:
            json.dump(settings, fh)


def run_case(case):
    write_settings(case.get("settings"))
    image, content, style = build(case["image"])
    args = case.get("args", {})
    if args.get("style_file"):
        if not os.path.exists(args["style_file"]):
            write_style_file(args["style_file"])
    target = content.get_mask() if case.get("select_mask") else content
    before = layer_tree(image)
    selection_before = None if Gimp.Selection.is_empty(image) else Gimp.Selection.bounds(image)[2:]
    selection_digest = hashlib.sha256(read_gray(image.get_selection())).hexdigest()
    proc = Gimp.get_pdb().lookup_procedure("python-fu-nst-keras")
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [target])
    if not args.get("style_file"):
        cfg.set_property("style-layer", style)
    else:
        cfg.set_property("style-file", Gio.File.new_for_path(args["style_file"]))
    if case.get("style_is_content"):
        cfg.set_property("style-layer", content)
    for key, value in args.items():
        if key != "style_file":
            cfg.set_property(key, value)
    started = time.monotonic()
    result = proc.run(cfg)
    status = result.index(0)
    message = Gimp.get_pdb().get_last_error() if status != Gimp.PDBStatusType.SUCCESS else None  # before other calls
    record = {
        "message": message,
        "seconds": round(time.monotonic() - started, 1),
        "fake_alive": fake_alive(case.get("settings")),
        "selection_kept": hashlib.sha256(read_gray(image.get_selection())).hexdigest() == selection_digest,
        "status": status.value_nick,
        "before": before,
        "after": layer_tree(image),
        "image_precision": image.get_precision().value_nick,
        "image_gray": image.get_base_type() == Gimp.ImageBaseType.GRAY,
        "tmpdir": sorted(os.listdir(SPEC["tmpdir"])),
    }
    if status == Gimp.PDBStatusType.SUCCESS:
        returned = result.index(1)
        record["returned_id"] = returned.get_id() if returned is not None else None
        layers = image.get_layers() if content.get_parent() is None else content.get_parent().get_children()
        names = [layer.get_name() for layer in layers]
        record["siblings"] = names
        new = find(image, record["returned_id"])
        record["new"] = describe_new(image, content, new, selection_before)
    image.delete()
    return record


def describe_new(image, content, new, selection_before):
    info = {
        "name": new.get_name(),
        "parent": new.get_parent().get_name() if new.get_parent() is not None else None,
        "position": image.get_item_position(new),
        "content_position": image.get_item_position(content),
        "offsets": list(new.get_offsets()[1:]),
        "size": [new.get_width(), new.get_height()],
        "has_alpha": new.has_alpha(),
        "is_gray": new.is_gray(),
        "visible": new.get_visible(),
    }
    parasite = new.get_parasite("nst-keras-settings")
    info["parasite"] = json.loads(bytes(parasite.get_data()).decode()) if parasite is not None else None
    src, w, h = read_rgba(content)
    dst, _, _ = read_rgba(new)
    changed = opaque = 0
    alpha_diff = 0
    transparent_kept = True
    for i in range(0, len(src), 4):
        a_src, a_dst = src[i + 3], dst[i + 3]
        alpha_diff = max(alpha_diff, abs(a_src - a_dst))
        if a_src == 0 and a_dst != 0:
            transparent_kept = False
        if a_src == 255:
            opaque += 1
            if max(abs(src[i + k] - dst[i + k]) for k in range(3)) > 8:
                changed += 1
    info["changed_fraction"] = changed / max(1, opaque)
    info["alpha_max_diff"] = alpha_diff
    info["transparent_kept"] = transparent_kept
    mask = new.get_mask()
    if mask is not None:
        # the expected mask: the content layer's own mask combined with the selection (their minimum)
        values = read_gray(mask)
        own = read_gray(content.get_mask()) if content.get_mask() is not None else None
        selection = read_gray(image.get_selection()) if selection_before is not None else None
        iw = image.get_width()
        _, ox, oy = new.get_offsets()
        worst = 0
        for y in range(h):
            for x in range(w):
                want = min(
                    own[y * w + x] if own is not None else 255,
                    selection[(y + oy) * iw + x + ox] if selection is not None else 255,
                )
                worst = max(worst, abs(values[y * w + x] - want))
        info["mask_vs_expected"] = worst
        info["mask_mean"] = sum(values) / len(values)
    if mask is not None and selection_before is not None:
        values = read_gray(mask)
        selection = read_gray(image.get_selection())
        iw = image.get_width()
        _, ox, oy = new.get_offsets()
        # mask value vs the selection's value at the same image position, over the whole layer
        worst = 0
        for y in range(h):
            for x in range(w):
                worst = max(worst, abs(values[y * w + x] - selection[(y + oy) * iw + x + ox]))
        row = [values[(35 - oy) * w + x] for x in range(w)]
        info["mask"] = {
            "inside": values[(35 - oy) * w + (55 - ox)],
            "outside": values[0],
            "row": row,
            "max_diff_vs_selection": worst,
        }
    return info


results = {}
for case in SPEC["cases"]:
    log("case", case["name"])
    try:
        results[case["name"]] = run_case(case)
    except Exception:  # recorded, so one broken case does not hide the others
        results[case["name"]] = {"status": "exception", "message": traceback.format_exc()}
    log("->", results[case["name"]].get("status"), (results[case["name"]].get("message") or "")[:300])
    with open(SPEC["results"], "w") as fh:
        json.dump(results, fh, indent=1)

# The test's self-check: a message sent on purpose must be found by the message detector (test_no_gimp_messages).
Gimp.message(SPEC.get("injected_message", "nst-keras test: injected message"))
