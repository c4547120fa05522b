"""Layers in and out of GIMP: export a layer or a style file to PNG for the engine, load the engine's
picture back as a layer, its alpha and its mask (the content layer's own mask combined with the
selection). Runs in GIMP (gi); nothing here knows about the engine.
"""

import os

from gi.repository import Gegl, Gimp, Gio, GLib
from nst_engine import PluginError

U8_PRECISIONS = (Gimp.Precision.U8_LINEAR, Gimp.Precision.U8_NON_LINEAR, Gimp.Precision.U8_PERCEPTUAL)
ENGINE_INPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


def is_high_bit(image):
    return image.get_precision() not in U8_PRECISIONS


def gfile_path(gfile):
    return gfile.get_path() if gfile is not None else None


def style_file_stem(gfile):
    path = gfile_path(gfile) or (gfile.get_basename() if gfile is not None else "")
    return os.path.splitext(os.path.basename(path))[0] or "style"


def _run_pdb(name, what, **props):
    procedure = Gimp.get_pdb().lookup_procedure(name)
    if procedure is None:
        raise PluginError(f"GIMP procedure {name} is missing")
    config = procedure.create_config()
    for key, value in props.items():
        config.set_property(key.replace("_", "-"), value)
    result = procedure.run(config)
    if result.index(0) != Gimp.PDBStatusType.SUCCESS:
        raise PluginError(f"{what} failed: {Gimp.get_pdb().get_last_error()}")
    return result


def _export_png(image, path, what):
    _run_pdb(
        "file-png-export",
        what,
        run_mode=Gimp.RunMode.NONINTERACTIVE,
        image=image,
        file=Gio.File.new_for_path(path),
        options=None,
        interlaced=False,
        compression=1,
        bkgd=False,
        offs=False,
        phys=False,
        time=False,
        save_transparent=True,
        optimize_palette=False,
        format="auto",
        include_exif=False,
        include_iptc=False,
        include_xmp=False,
        include_color_profile=False,
        include_thumbnail=False,
        include_comment=False,
    )


def export_layer(layer, path, high_bit, what="Handing your layer to the engine"):
    """Write the layer's own pixels (its real size, alpha kept; offsets, visibility, opacity and
    mask ignored) to an sRGB PNG, 16 bits per channel when high_bit."""
    precision = Gimp.Precision.U16_NON_LINEAR if high_bit else Gimp.Precision.U8_NON_LINEAR
    width, height = layer.get_width(), layer.get_height()
    temp = Gimp.Image.new_with_precision(width, height, Gimp.ImageBaseType.RGB, precision)
    try:
        temp.undo_disable()
        copy = Gimp.Layer.new_from_drawable(layer, temp)
        temp.insert_layer(copy, None, 0)
        copy.set_lock_position(False)
        copy.set_offsets(0, 0)
        copy.set_visible(True)
        copy.set_opacity(100.0)
        copy.set_mode(Gimp.LayerMode.NORMAL)
        if copy.get_mask() is not None:
            copy.remove_mask(Gimp.MaskApplyMode.DISCARD)
        _export_png(temp, path, what)
    finally:
        temp.delete()


def export_style_file(gfile, folder, high_bit):
    """A style file the engine reads as it is, or a PNG that GIMP made from it (any format GIMP opens)."""
    path = gfile.get_path()
    if path is None:
        raise PluginError(f"The style file {gfile.get_uri()} is not a local file: choose a file on this computer")
    if not os.path.isfile(path):
        raise PluginError(f"The style file {path} does not exist: choose another one")
    if not os.access(path, os.R_OK):
        raise PluginError(f"The style file {path} cannot be read (no permission): choose another one")
    if os.path.splitext(path)[1].lower() in ENGINE_INPUT_SUFFIXES:
        return path
    try:
        image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, gfile)
    except GLib.Error as exc:
        raise PluginError(f"The style file {path} cannot be opened: {exc.message}") from None
    if image is None:
        raise PluginError(f"The style file {path} cannot be opened")
    try:
        image.undo_disable()
        layer = image.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        out = os.path.join(folder, "style.png")
        export_layer(layer, out, high_bit, what="Handing the style to the engine")
        return out
    finally:
        image.delete()


def load_layer(image, path, width, height, name, what="The engine's result"):
    """A new layer for `image` (not yet inserted) with the pixels of a PNG, scaled to width x height.

    The file is opened as a separate image (scaled there with the context's interpolation), and
    its layer copied, which converts it to the image's colour mode and precision.
    """
    try:
        loaded = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    except GLib.Error as exc:
        raise PluginError(f"{what} cannot be read: {exc.message}") from None
    if loaded is None:
        raise PluginError(f"{what} cannot be read")
    try:
        loaded.undo_disable()
        if (loaded.get_width(), loaded.get_height()) != (width, height):
            loaded.scale(width, height)
        layer = Gimp.Layer.new_from_drawable(loaded.get_layers()[0], image)
    finally:
        loaded.delete()
    layer.set_name(name)
    return layer


def _alpha_format(drawable):
    """(babl format name, bytes per component, components) to read and write a drawable's pixels."""
    nick = drawable.get_image().get_precision().value_nick  # e.g. "u16-non-linear", "float-linear"
    bits, _, trc = nick.partition("-")
    component, size = {"u8": ("u8", 1), "u16": ("u16", 2)}.get(bits, ("float", 4))
    linear = trc == "linear"
    if drawable.is_gray():
        return ("YA " if linear else "Y'A ") + component, size, 2
    return ("RGBA " if linear else "R'G'B'A ") + component, size, 4


def copy_alpha(source, target, rows=128):
    """Give `target` exactly the alpha channel of `source` (same size; no undo).

    The engine keeps the content's alpha, but a result scaled back up to the layer's size has soft
    edges; the original alpha at full size keeps transparent pixels transparent.
    """
    if not target.has_alpha():
        target.add_alpha()
    fmt, size, channels = _alpha_format(target)
    width, height = target.get_width(), target.get_height()
    src_buf, dst_buf = source.get_buffer(), target.get_buffer()
    stride, offset = size * channels, size * (channels - 1)
    for y in range(0, height, rows):
        rect = Gegl.Rectangle.new(0, y, width, min(rows, height - y))
        src = bytes(src_buf.get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))
        dst = bytearray(dst_buf.get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))
        for k in range(size):
            dst[offset + k :: stride] = src[offset + k :: stride]
        dst_buf.set(rect, fmt, bytes(dst))
    dst_buf.flush()


def copy_pixels(source, target):
    """Copy a layer's pixels into another layer of the same size (no undo: used for previews)."""
    rect = Gegl.Rectangle.new(0, 0, target.get_width(), target.get_height())
    dst = target.get_buffer()
    source.get_buffer().copy(rect, Gegl.AbyssPolicy.NONE, dst, rect)
    dst.flush()
    target.update(0, 0, target.get_width(), target.get_height())


def active_mask(layer):
    """The layer's own mask when it hides something (present and applied), else None."""
    mask = layer.get_mask()
    if mask is None or not layer.get_apply_mask():
        return None
    return mask


def check_selection_touches(image, layer):
    """PluginError when there is a selection and none of it lies on the layer (the result would be invisible)."""
    if Gimp.Selection.is_empty(image):
        return
    touches, _x, _y, width, height = layer.mask_intersect()
    if not touches or width <= 0 or height <= 0:
        raise PluginError(
            "The selection does not touch your layer, so the result would be invisible: select a part of "
            "the layer, or nothing (Select > None) to paint all of it."
        )


def add_result_mask(image, layer, new):
    """Give `new` (inserted, same place as `layer`) the mask that hides what `layer` hides:
    the selection, the layer's own mask, or both combined (their intersection). The image's
    selection is left as it was."""
    mask = active_mask(layer)
    has_selection = not Gimp.Selection.is_empty(image)
    if mask is None and not has_selection:
        return
    if mask is None:
        new.add_mask(new.create_mask(Gimp.AddMaskType.SELECTION))
        return
    saved = Gimp.Selection.save(image) if has_selection else None
    try:
        image.select_item(Gimp.ChannelOps.INTERSECT if has_selection else Gimp.ChannelOps.REPLACE, mask)
        new.add_mask(new.create_mask(Gimp.AddMaskType.SELECTION))
    finally:
        if saved is not None:
            image.select_item(Gimp.ChannelOps.REPLACE, saved)
            image.remove_channel(saved)
        else:
            Gimp.Selection.none(image)
