"""The pixels and metadata of each format: decoding into float RGB + alpha, EXIF orientation, 16-bit encoders.

Pillow decodes every format; two of its gaps are filled here. Pillow reduces 16-bit RGB(A)
PNG and TIFF samples to their high bytes: a second decode of the same data with the opposite
byte order gives the low bytes (fast, and it covers every TIFF compression Pillow reads, LZW
and PackBits included, which tifffile cannot decode without the large imagecodecs package).
16-bit grey + alpha PNGs are read by pypng. Pillow cannot write 16-bit RGB(A) PNGs at all, so
those are written by pypng (at 1353x900 about as fast as the hand-written encoder it replaced, files
18% larger because pypng does not filter rows: docs/benchmarks.md), and TIFFs by tifffile.
"""

from __future__ import annotations

import io
import sys
import zlib
from typing import Optional

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112
PNG_ICC_NAME = b"ICC profile"

# Rawmodes of 16-bit multi-channel data, which Pillow reduces to 8 bits (it keeps the high byte).
# Decoding the same data a second time with the opposite byte order gives the low bytes.
_SWAPPED_RAWMODE = {
    "RGB;16B": "RGB;16L",
    "RGB;16L": "RGB;16B",
    "RGBA;16B": "RGBA;16L",
    "RGBA;16L": "RGBA;16B",
    "RGBX;16B": "RGBX;16L",
    "RGBX;16L": "RGBX;16B",
}


def _tile_rawmode(tile) -> Optional[str]:
    args = tile[3]
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return None


def _with_rawmode(tile, rawmode: str):
    args = tile[3]
    args = rawmode if isinstance(args, str) else (rawmode, *args[1:])
    if hasattr(tile, "_replace"):
        return tile._replace(args=args)
    return (*tuple(tile)[:3], args)


def _native(rawmode: str) -> str:
    if rawmode.endswith(";16N"):
        return rawmode[:-1] + ("L" if sys.byteorder == "little" else "B")
    return rawmode


def _wide_rawmode(image) -> Optional[str]:
    """The rawmode when `image` holds 16-bit RGB(A) data that Pillow would reduce to 8 bits, else None."""
    if image.format not in ("PNG", "TIFF") or image.mode not in ("RGB", "RGBA") or not image.tile:
        return None
    rawmodes = {_tile_rawmode(t) for t in image.tile}
    if len(rawmodes) != 1:
        return None
    rawmode = _native(rawmodes.pop() or "")
    return rawmode if rawmode in _SWAPPED_RAWMODE or rawmode == "LA;16B" else None


def decode(image, fspath: str):
    """(rgb float32 (H, W, 3) 0..255, alpha or None, bit depth, ICC profile) of an opened image."""
    icc = image.info.get("icc_profile") or None
    if icc is not None and bytes(icc[16:20]) != b"RGB ":
        icc = None  # a grey or CMYK profile does not describe the RGB pixels we return
    wide = _wide_rawmode(image)
    if wide == "LA;16B":
        return (*_decode_png_la16(fspath), icc)
    if wide is not None:
        return (*_decode_wide(image, fspath, wide), icc)

    image.load()
    mode = image.mode
    trns = image.info.get("transparency")
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        raw = np.asarray(image)
        grey = np.clip(raw.astype(np.float32), 0, 65535) / np.float32(257.0)
        alpha = _colour_key_alpha(raw, trns) if isinstance(trns, int) else None
        return _grey_to_rgb(grey), alpha, 16, icc
    if mode == "F":
        grey = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        peak = float(grey.max(initial=0.0))
        if peak <= 1.0:
            grey = grey * np.float32(255.0)  # 0..1 floats, the usual convention for float images
        elif peak > 255.0:
            grey = grey / np.float32(257.0)  # 16-bit values stored as floats
        return _grey_to_rgb(np.clip(grey, 0, 255)), None, 16, icc
    if mode == "1":
        image, mode = image.convert("L"), "L"
    if mode == "L":
        raw = np.asarray(image)
        alpha = _colour_key_alpha(raw, trns) if isinstance(trns, int) else None
        return _grey_to_rgb(raw.astype(np.float32)), alpha, 8, icc
    if mode in ("LA", "La"):
        raw = np.asarray(image.convert("LA") if mode == "La" else image).astype(np.float32)
        return _grey_to_rgb(raw[..., 0]), raw[..., 1], 8, icc
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or trns is not None or getattr(image.palette, "mode", "") == "RGBA"
        raw = np.asarray(image.convert("RGBA" if has_alpha else "RGB")).astype(np.float32)
        return raw[..., :3], (raw[..., 3] if has_alpha else None), 8, icc
    if mode == "RGB":
        raw = np.asarray(image)
        alpha = _colour_key_alpha(raw, trns) if isinstance(trns, tuple) else None
        return raw.astype(np.float32), alpha, 8, icc
    if mode in ("RGBA", "RGBa"):
        raw = np.asarray(image.convert("RGBA") if mode == "RGBa" else image).astype(np.float32)
        return raw[..., :3], raw[..., 3], 8, icc
    if mode == "CMYK":
        cmyk_profile = image.info.get("icc_profile") or None
        return np.asarray(_cmyk_to_rgb(image, cmyk_profile)).astype(np.float32), None, 8, None
    has_alpha = "A" in mode
    raw = np.asarray(image.convert("RGBA" if has_alpha else "RGB")).astype(np.float32)
    return raw[..., :3], (raw[..., 3] if has_alpha else None), 8, None


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(grey, dtype=np.float32)[..., None], 3, axis=-1)


def _colour_key_alpha(raw: np.ndarray, key) -> np.ndarray:
    """Alpha from colour-key transparency (PNG tRNS for grey and RGB images): 0 where the key colour is."""
    if raw.ndim == 3:
        hit = np.all(raw[..., : len(key)] == np.asarray(key, dtype=raw.dtype), axis=-1)
    else:
        hit = raw == key
    return np.where(hit, 0.0, 255.0).astype(np.float32)


def _cmyk_to_rgb(image, icc: Optional[bytes]):
    """CMYK to RGB through the file's ICC profile when it has one, else the standard (1-C)(1-K) formula."""
    if icc:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # noqa: BLE001 - a broken or unsupported profile: fall back to the formula
            pass
    return image.convert("RGB")


def _decode_wide(image, fspath: str, rawmode: str):
    """Exact 16-bit RGB(A): Pillow decodes the high bytes; a second decode with swapped byte order gives the low."""
    image.load()
    high = np.asarray(image).astype(np.uint16)
    try:
        with open(fspath, "rb") as handle, Image.open(handle) as second:
            second.tile = [_with_rawmode(t, _SWAPPED_RAWMODE[rawmode]) for t in second.tile]
            second.load()
            low = np.asarray(second).astype(np.uint16)
        if low.shape != high.shape:
            raise ValueError("shape mismatch")
        values = (high << 8) | low
    except Exception:  # noqa: BLE001 - keep the 8 bits Pillow gave rather than fail
        values = (high * np.uint16(257)).astype(np.uint16)
    rgb = values[..., :3].astype(np.float32) / np.float32(257.0)
    alpha = None
    if image.mode == "RGBA" and rawmode.startswith("RGBA"):
        alpha = values[..., 3].astype(np.float32) / np.float32(257.0)
    trns = image.info.get("transparency")
    if alpha is None and isinstance(trns, tuple):
        alpha = _colour_key_alpha(values[..., :3], trns)
    return rgb, alpha, 16


def _decode_png_la16(fspath: str):
    """Exact 16-bit grey + alpha PNG (Pillow gives 8 bits): the samples as pypng reads them."""
    import png

    width, height, rows, info = png.Reader(filename=fspath).read()
    samples = np.vstack([np.asarray(row, np.uint16) for row in rows]).reshape(height, width, info["planes"])
    grey = samples[..., 0].astype(np.float32) / np.float32(257.0)
    alpha = samples[..., 1].astype(np.float32) / np.float32(257.0)
    return _grey_to_rgb(grey), alpha, 16


def exif_orientation(image) -> int:
    try:
        value = int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - unreadable EXIF: leave the image as stored
        return 1
    return value if 1 <= value <= 8 else 1


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an (H, W, ...) array, as ImageOps.exif_transpose does."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(array, k=-1)
    if orientation == 7:
        return array[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(array, k=1)
    return array


# Encoders -------------------------------------------------------------------------------------


def write_png16(handle, pixels: np.ndarray, icc_profile: Optional[bytes] = None) -> None:
    """A 16-bit RGB or RGBA PNG through pypng; the ICC profile, when given, as an iCCP chunk after IHDR."""
    import png

    height, width, channels = pixels.shape
    writer = png.Writer(width, height, greyscale=False, alpha=channels == 4, bitdepth=16, compression=6)
    rows = np.ascontiguousarray(pixels, dtype=np.uint16).reshape(height, width * channels)
    if not icc_profile:
        writer.write(handle, rows)
        return
    encoded = io.BytesIO()
    writer.write(encoded, rows)
    chunks = list(png.Reader(bytes=encoded.getvalue()).chunks())
    iccp = (b"iCCP", PNG_ICC_NAME + b"\x00\x00" + zlib.compress(icc_profile))  # name, NUL, method 0 (deflate)
    png.write_chunks(handle, [chunks[0], iccp, *chunks[1:]])


def write_tiff(handle, pixels: np.ndarray, icc_profile: Optional[bytes] = None) -> None:
    """A little-endian TIFF through tifffile: RGB or RGBA (unassociated alpha), 8 or 16 bits, deflate + predictor."""
    import tifffile

    height, width, channels = pixels.shape
    row_bytes = width * channels * pixels.dtype.itemsize
    encoded = io.BytesIO()  # tifffile takes the name of a real file handle for a path: give it memory
    tifffile.imwrite(
        encoded,
        np.ascontiguousarray(pixels),
        byteorder="<",
        photometric="rgb",
        planarconfig="contig",
        extrasamples=("unassalpha",) if channels == 4 else None,
        compression="zlib",
        compressionargs={"level": 6},
        predictor=True,
        rowsperstrip=max(1, min(height, (256 * 1024) // row_bytes)),
        resolution=(72, 72),
        resolutionunit="inch",
        software="nst-keras",
        iccprofile=icc_profile or None,
        metadata=None,
    )
    handle.write(encoded.getbuffer())
