"""Reading and writing image files: the only module of nst-keras that touches image files.

Everything comes in and goes out as float arrays with values 0..255, whatever the file's
bit depth, so the engine never has to care about formats:

- `load_image(path)` reads PNG, JPEG, TIFF, WebP, BMP (and whatever else Pillow recognises by
  content, whatever the file's extension) into a `LoadedImage`: RGB float32 (H, W, 3) 0..255,
  the alpha channel when there is one, and the source's bit depth. EXIF orientation is applied.
  16-bit files keep their precision (value / 257.0).
- `save_image(path, image)` writes PNG (8 or 16 bits, RGB or RGBA), TIFF (8 or 16 bits, RGB or
  RGBA) or JPEG (8 bits; the alpha channel is dropped). The file appears complete or not at all.
- `check_output_path(path, inputs)` checks an output name before a long run starts.

Every problem a user can cause (a missing, unreadable, damaged, too small or too large file, an
unsupported output type, an output that would overwrite an input) raises `ImageError`, a
ValueError whose message is one line naming the file, what was expected and what was received.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from .schedule import fit_long_side

SUPPORTED_INPUT = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
SUPPORTED_OUTPUT = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

_INPUT_KINDS = "PNG, JPEG, TIFF, WebP or BMP"
_OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
_JPEG_QUALITY = 95
_EXIF_ORIENTATION = 0x0112

PathLike = Union[str, "os.PathLike[str]"]


class ImageError(ValueError):
    """A problem with an image file that the user can fix; the message is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """An image read from a file.

    rgb: float32 (H, W, 3), values 0..255 (16-bit sources keep their fractional precision).
    alpha: float32 (H, W), 0..255, or None when the file has no alpha channel or transparency.
    bit_depth: 8 or 16, bits per channel of the source (16 for 16-bit, 32-bit and float files).
    path: the path as it was given.
    icc_profile: the embedded ICC colour profile of an RGB or grey source (bytes), or None; pass
        it to save_image to keep the output in the same colour space.
    """

    rgb: np.ndarray
    alpha: Optional[np.ndarray]
    bit_depth: int
    path: str
    icc_profile: Optional[bytes] = None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def has_alpha(self) -> bool:
        return self.alpha is not None

    def rgba(self) -> np.ndarray:
        """(H, W, 4) float32 when the image has alpha, else (H, W, 3)."""
        if self.alpha is None:
            return self.rgb
        return np.concatenate([self.rgb, self.alpha[..., None]], axis=-1)


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------

_PILLOW_LOCK = threading.RLock()


@contextlib.contextmanager
def _pillow_settings():
    """Pillow's own decompression-bomb check off (we apply `pixel_limit` ourselves), truncated files refused."""
    with _PILLOW_LOCK:
        old_max, old_truncated = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS = None
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = old_max, old_truncated


def _quote(path: str) -> str:
    return "'" + str(path).replace("\n", "\\n").replace("\r", "\\r") + "'"


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text or type(exc).__name__


def load_image(
    path: PathLike,
    *,
    what: str = "image",
    pixel_limit: int = 200_000_000,
    max_size: Optional[int] = None,
    min_side: int = 1,
) -> LoadedImage:
    """Read an image file into a LoadedImage (float32 RGB 0..255, optional alpha).

    The format is detected from the file's content. EXIF orientation is applied, so the image
    is the right way up. Grey, palette, CMYK (through its ICC profile when it has one), 16-bit
    and float images become RGB; transparency (alpha channel, palette or colour-key
    transparency) becomes `alpha`. Multi-frame files give their first frame.

    what: how messages name the image ("content image", "style image 2").
    pixel_limit: images with more pixels are refused (a guard against decompression bombs),
        unless max_size is given and the decoder can reduce the image while decoding (JPEG)
        to within the limit.
    max_size: when given (and > 0) and the image's longest side is larger, the image is
        downscaled while loading (Lanczos) so that its longest side is max_size, the same size
        the engine would resize it to anyway (StyleConfig.target_size); JPEGs are decoded at a
        reduced scale first, which saves time and memory on huge photos. None or 0: full size.
    min_side: each side must be at least this many pixels, after the max_size reduction; an
        image whose reduced short side would fall below it is refused as too elongated.

    Raises ImageError with a one-line message for any problem with the file.
    """
    try:
        fspath = os.fspath(path)
    except TypeError:
        raise ImageError(f"{what}: expected a file path, received {path!r}") from None
    if isinstance(fspath, bytes):
        fspath = os.fsdecode(fspath)
    shown = _quote(fspath)
    if pixel_limit is None or pixel_limit < 1:
        raise ImageError(f"pixel limit: expected a whole number >= 1, received {pixel_limit!r}")
    if max_size is not None and max_size < 0:
        raise ImageError(f"max size: expected a whole number >= 0 (0: no limit), received {max_size!r}")
    max_size = int(max_size) if max_size else None
    min_side = max(1, int(min_side))

    handle = _open_file(fspath, what, shown)
    with handle, _pillow_settings():
        try:
            image = Image.open(handle)
        except UnidentifiedImageError:
            kind = _signature_kind(handle)
            if kind:
                raise ImageError(
                    f"{what} {shown} looks like a {kind} file but cannot be read: it is damaged or uses a "
                    f"kind of {kind} that is not supported; expected a complete image file"
                ) from None
            raise ImageError(
                f"{what} {shown} is not an image that can be read; expected {_INPUT_KINDS}, "
                f"received {_describe_content(handle)}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file, not a bug
            raise ImageError(
                f"{what} {shown} is damaged and cannot be read ({_reason(exc)}); expected a complete image file"
            ) from None
        with image:
            width, height = image.size
            _check_dimensions(width, height, what, shown, max_size, min_side)
            if max_size and max(width, height) > max_size and image.format == "JPEG":
                target_h, target_w = fit_long_side(height, width, max_size)
                with contextlib.suppress(Exception):
                    image.draft(image.mode, (target_w, target_h))
            pixels = image.size[0] * image.size[1]
            if pixels > pixel_limit:
                reduced = ""
                if image.size != (width, height):
                    reduced = f" even when decoded at reduced size {image.size[0]}x{image.size[1]}"
                raise ImageError(
                    f"{what} {shown} is {width}x{height} and has {width * height:,} pixels{reduced}, above the limit "
                    f"of {pixel_limit:,} (--pixel-limit); raise the limit or use a smaller image"
                )
            try:
                rgb, alpha, bit_depth, icc = _decode(image, fspath)
                orientation = _orientation(image)
            except MemoryError:
                raise ImageError(
                    f"{what} {shown} ({width}x{height}) is too large to decode in the available memory"
                ) from None
            except ImageError:
                raise
            except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file, not a bug
                raise ImageError(
                    f"{what} {shown} is damaged or truncated and cannot be decoded ({_reason(exc)}); "
                    "expected a complete image file"
                ) from None

    rgb = _orient(rgb, orientation)
    if alpha is not None:
        alpha = _orient(alpha, orientation)
    if max_size and max(rgb.shape[:2]) > max_size:
        size = fit_long_side(rgb.shape[0], rgb.shape[1], max_size)
        rgb = _resize(rgb, size)
        if alpha is not None:
            alpha = _resize(alpha[..., None], size)[..., 0]
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    if alpha is not None:
        alpha = np.ascontiguousarray(alpha, dtype=np.float32)
    return LoadedImage(rgb=rgb, alpha=alpha, bit_depth=bit_depth, path=fspath, icc_profile=icc)


def _open_file(fspath: str, what: str, shown: str):
    """Open the file for binary reading, turning every OS problem into a one-line ImageError."""
    if not fspath:
        raise ImageError(f"{what}: expected a file path, received an empty path")
    try:
        info = os.stat(fspath)
    except FileNotFoundError:
        raise ImageError(f"{what} {shown} does not exist; expected an image file ({_INPUT_KINDS})") from None
    except NotADirectoryError:
        raise ImageError(f"{what} {shown} does not exist (a part of the path is a file, not a folder)") from None
    except PermissionError:
        raise ImageError(f"{what} {shown} cannot be read (permission denied)") from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"{what} {shown} cannot be read ({_reason(exc)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{what} {shown} is a folder; expected an image file ({_INPUT_KINDS})")
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"{what} {shown} is not a regular file; expected an image file ({_INPUT_KINDS})")
    if info.st_size == 0:
        raise ImageError(f"{what} {shown} is empty (0 bytes); expected an image file ({_INPUT_KINDS})")
    try:
        return open(fspath, "rb")  # noqa: SIM115 - closed by the caller's with statement
    except PermissionError:
        raise ImageError(f"{what} {shown} cannot be read (permission denied)") from None
    except OSError as exc:
        raise ImageError(f"{what} {shown} cannot be read ({_reason(exc)})") from None


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)


def _signature_kind(handle) -> Optional[str]:
    """The image format a file's first bytes announce, or None."""
    try:
        handle.seek(0)
        head = handle.read(16)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return kind
    return None


def _describe_content(handle) -> str:
    """A few words about what a file that is not an image holds."""
    try:
        handle.seek(0)
        head = handle.read(512)
    except OSError:
        return "a file of an unknown format"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # The head may end in the middle of a multi-byte character.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        snippet = " ".join(text.split())[:24]
        return f"a text file (starting with {snippet!r})"
    if head.startswith((b"%PDF", b"PK\x03\x04")):
        return "a PDF file" if head.startswith(b"%PDF") else "a ZIP archive (or office document)"
    return f"a file of an unknown format (first bytes {head[:8].hex(' ')})"


def _check_dimensions(width: int, height: int, what: str, shown: str, max_size, min_side: int) -> None:
    if min(width, height) < min_side:
        raise ImageError(f"{what} {shown} is {width}x{height} pixels; each side must be at least {min_side} pixels")
    if max_size and max(width, height) > max_size:
        new_h, new_w = fit_long_side(height, width, max_size)
        if min(new_h, new_w) < min_side:
            long_side, short_side = max(width, height), min(width, height)
            ratio = long_side / short_side
            ratio_text = f"{ratio:.0f}:1" if ratio >= 10 else f"{ratio:.2g}:1"
            raise ImageError(
                f"{what} {shown} is {width}x{height} pixels (aspect ratio {ratio_text}): scaled to fit the maximum "
                f"size of {max_size} pixels its short side would be {min(new_h, new_w)} pixels, below the minimum "
                f"of {min_side}; crop it or raise --max-size"
            )


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


def _decode(image, fspath: str):
    """(rgb float32 (H, W, 3) 0..255, alpha or None, bit depth, ICC profile) of an opened image."""
    icc = image.info.get("icc_profile") or None
    if icc is not None and bytes(icc[16:20]) != b"RGB ":
        icc = None  # a grey or CMYK profile does not describe the RGB pixels we return
    wide = _wide_rawmode(image)
    if wide == "LA;16B":
        return (*_decode_png_la16(image, fspath), icc)
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
        values = high * np.uint16(257)
    rgb = values[..., :3].astype(np.float32) / np.float32(257.0)
    alpha = None
    if image.mode == "RGBA" and rawmode.startswith("RGBA"):
        alpha = values[..., 3].astype(np.float32) / np.float32(257.0)
    trns = image.info.get("transparency")
    if alpha is None and isinstance(trns, tuple):
        alpha = _colour_key_alpha(values[..., :3], trns)
    return rgb, alpha, 16


def _decode_png_la16(image, fspath: str):
    """Exact 16-bit grey + alpha PNG: the same bytes, declared as 8-bit RGBA (the same filter stride), give
    (grey high, grey low, alpha high, alpha low) per pixel."""
    with open(fspath, "rb") as handle:
        data = bytearray(handle.read())
    ihdr = 8  # after the signature: length (4), b"IHDR" (4), 13 bytes of data, CRC (4)
    if data[ihdr + 4 : ihdr + 8] != b"IHDR" or data[ihdr + 16] != 16 or data[ihdr + 17] != 4:
        raise ValueError("unexpected PNG header")
    data[ihdr + 16] = 8
    data[ihdr + 17] = 6
    crc = zlib.crc32(bytes(data[ihdr + 4 : ihdr + 21])) & 0xFFFFFFFF
    data[ihdr + 21 : ihdr + 25] = struct.pack(">I", crc)
    with Image.open(io.BytesIO(bytes(data))) as bytes_image:
        bytes_image.load()
        raw = np.asarray(bytes_image).astype(np.uint16)
    grey = ((raw[..., 0] << 8) | raw[..., 1]).astype(np.float32) / np.float32(257.0)
    alpha = ((raw[..., 2] << 8) | raw[..., 3]).astype(np.float32) / np.float32(257.0)
    return _grey_to_rgb(grey), alpha, 16


def _orientation(image) -> int:
    try:
        value = int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - unreadable EXIF: leave the image as stored
        return 1
    return value if 1 <= value <= 8 else 1


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
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


def _resize(array: np.ndarray, size: tuple) -> np.ndarray:
    """Lanczos resize of a float (H, W, C) array to size (h, w), channel by channel, clipped to 0..255."""
    height, width = size
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(array[..., c], dtype=np.float32)).resize(
                (width, height), Image.Resampling.LANCZOS
            )
        )
        for c in range(array.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def _check_extension(path: str, what: str, shown: str) -> str:
    ext = _extension(path)
    if ext not in SUPPORTED_OUTPUT:
        received = f"'{ext}'" if ext else "no extension"
        raise ImageError(
            f"{what} {shown} has an unsupported file type ({received}); expected one of {', '.join(SUPPORTED_OUTPUT)}"
        )
    return ext


def save_image(
    path: PathLike,
    image: np.ndarray,
    *,
    bit_depth: int = 8,
    what: str = "output",
    icc_profile: Optional[bytes] = None,
) -> None:
    """Write a float image (H, W, 3) or (H, W, 4) with values 0..255 to `path`, atomically.

    The format follows the extension: .png (8 or 16 bits, RGB or RGBA), .tif/.tiff (8 or 16 bits,
    RGB or RGBA, deflate-compressed), .jpg/.jpeg (8 bits, quality 95; an alpha channel is dropped,
    not composited). Values are clipped to 0..255 and rounded (16-bit: value * 257).
    `icc_profile` (bytes) is embedded when given.

    The data is written to a temporary file in the same folder, which then replaces `path`; on any
    failure the temporary file is removed, an existing file at `path` is left as it was, and
    ImageError is raised.
    """
    try:
        fspath = os.fsdecode(os.fspath(path))
    except TypeError:
        raise ImageError(f"{what}: expected a file path, received {path!r}") from None
    shown = _quote(fspath)
    if not fspath:
        raise ImageError(f"{what}: expected a file path, received an empty path")
    ext = _check_extension(fspath, what, shown)
    if bit_depth not in (8, 16):
        raise ImageError(f"{what} {shown}: bit depth must be 8 or 16, received {bit_depth!r}")
    fmt = _OUTPUT_FORMATS[ext]
    if fmt == "JPEG" and bit_depth == 16:
        raise ImageError(
            f"{what} {shown}: JPEG holds only 8 bits per channel, received bit_depth=16; "
            "use a .png or .tif output for 16 bits"
        )
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"{what} {shown}: expected an image array (H, W, 3) or (H, W, 4), received {array.shape}")
    array = np.clip(np.nan_to_num(array.astype(np.float64), nan=0.0), 0.0, 255.0)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if fmt == "JPEG":
        array = array[..., :3]
    if bit_depth == 16:
        pixels = np.rint(array * 257.0).astype(np.uint16)
    else:
        pixels = np.rint(array).astype(np.uint8)

    def write(handle) -> None:
        if fmt == "TIFF":
            _write_tiff(handle, pixels, icc_profile)
        elif fmt == "PNG" and bit_depth == 16:
            _write_png16(handle, pixels, icc_profile)
        else:
            extra = {"icc_profile": icc_profile} if icc_profile else {}
            picture = Image.fromarray(np.ascontiguousarray(pixels))
            if fmt == "JPEG":
                picture.save(handle, format="JPEG", quality=_JPEG_QUALITY, subsampling=0, **extra)
            else:
                picture.save(handle, format="PNG", compress_level=6, **extra)

    _write_atomically(fspath, ext, write, what, shown)


def _default_file_mode(existing: str) -> int:
    try:
        return stat.S_IMODE(os.stat(existing).st_mode)
    except OSError:
        pass
    if os.name != "posix":
        return 0o666
    try:  # Linux reports the umask without changing it (os.umask would, briefly, for every thread)
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_atomically(fspath: str, ext: str, write, what: str, shown: str) -> None:
    target = os.path.abspath(fspath)
    folder, name = os.path.split(target)
    if os.path.isdir(target):
        raise ImageError(
            f"{what} {shown} is a folder; expected a file name such as {_quote(os.path.join(fspath, 'result' + ext))}"
        )
    existed = os.path.exists(target)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{ext}", dir=folder)
    except FileNotFoundError:
        raise ImageError(f"{what} {shown} cannot be written: folder {_quote(folder)} does not exist") from None
    except NotADirectoryError:
        raise ImageError(f"{what} {shown} cannot be written: {_quote(folder)} is not a folder") from None
    except PermissionError:
        raise ImageError(f"{what} {shown} cannot be written: folder {_quote(folder)} is not writable") from None
    except OSError as exc:
        raise ImageError(f"{what} {shown} cannot be written ({_reason(exc)})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _default_file_mode(target))
        os.replace(temporary, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit: clean up, then let them through
        kept = "the existing file was left unchanged" if existed else "nothing was written"
        raise ImageError(f"{what} {shown} could not be written ({_reason(exc)}); {kept}") from exc


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _write_png16(handle, pixels: np.ndarray, icc_profile: Optional[bytes] = None) -> None:
    """A 16-bit RGB or RGBA PNG (Pillow cannot write these): rows with the Sub filter, zlib-compressed."""
    height, width, channels = pixels.shape
    colour_type = {3: 2, 4: 6}[channels]
    handle.write(b"\x89PNG\r\n\x1a\n")
    handle.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)))
    if icc_profile:
        handle.write(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    stride = 2 * channels  # bytes per pixel, the filter's distance
    compressor = zlib.compressobj(6)
    pending = bytearray()
    rows_per_block = max(1, (1 << 20) // (width * stride + 1))
    for top in range(0, height, rows_per_block):
        rows = np.ascontiguousarray(pixels[top : top + rows_per_block], dtype=">u2").view(np.uint8)
        rows = rows.reshape(rows.shape[0], width * stride)
        filtered = np.empty((rows.shape[0], width * stride + 1), dtype=np.uint8)
        filtered[:, 0] = 1  # Sub: each byte minus the same byte of the previous pixel
        filtered[:, 1 : stride + 1] = rows[:, :stride]
        filtered[:, stride + 1 :] = rows[:, stride:] - rows[:, :-stride]
        pending += compressor.compress(filtered.tobytes())
        if len(pending) >= 1 << 20:
            handle.write(_png_chunk(b"IDAT", bytes(pending)))
            pending.clear()
    pending += compressor.flush()
    handle.write(_png_chunk(b"IDAT", bytes(pending)))
    handle.write(_png_chunk(b"IEND", b""))


def _write_tiff(handle, pixels: np.ndarray, icc_profile: Optional[bytes] = None) -> None:
    """A baseline little-endian TIFF, RGB or RGBA (unassociated alpha), 8 or 16 bits, deflate with predictor."""
    height, width, channels = pixels.shape
    bits = pixels.dtype.itemsize * 8
    dtype = "<u2" if bits == 16 else "u1"
    row_bytes = width * channels * pixels.dtype.itemsize
    rows_per_strip = max(1, min(height, (256 * 1024) // row_bytes))
    strips = []
    for top in range(0, height, rows_per_strip):
        block = np.ascontiguousarray(pixels[top : top + rows_per_strip]).astype(dtype)
        diff = block.copy()
        diff[:, 1:] -= block[:, :-1]  # horizontal differencing (predictor 2), modulo 2**bits
        strips.append(zlib.compress(diff.tobytes(), 6))

    SHORT, LONG, RATIONAL, ASCII, UNDEFINED = 3, 4, 5, 2, 7  # noqa: N806
    sizes = {SHORT: 2, LONG: 4, RATIONAL: 8, ASCII: 1, UNDEFINED: 1}
    software = b"nst-keras\x00"
    entries = [
        (256, LONG, [width]),
        (257, LONG, [height]),
        (258, SHORT, [bits] * channels),
        (259, SHORT, [8]),  # Adobe deflate
        (262, SHORT, [2]),  # RGB
        (273, LONG, [0] * len(strips)),  # strip offsets, filled in below
        (277, SHORT, [channels]),
        (278, LONG, [rows_per_strip]),
        (279, LONG, [len(s) for s in strips]),
        (282, RATIONAL, [(72, 1)]),
        (283, RATIONAL, [(72, 1)]),
        (284, SHORT, [1]),  # chunky
        (296, SHORT, [2]),  # inches
        (305, ASCII, software),
        (317, SHORT, [2]),  # horizontal differencing
    ]
    if channels == 4:
        entries.append((338, SHORT, [2]))  # unassociated alpha
    entries.append((339, SHORT, [1] * channels))  # unsigned integers
    if icc_profile:
        entries.append((34675, UNDEFINED, icc_profile))

    def pack(kind, values) -> bytes:
        if kind in (ASCII, UNDEFINED):
            return bytes(values)
        if kind == RATIONAL:
            return b"".join(struct.pack("<II", *v) for v in values)
        return struct.pack(f"<{len(values)}{'H' if kind == SHORT else 'I'}", *values)

    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    extra_offset = ifd_offset + ifd_size
    # Out-of-line values (longer than 4 bytes) go after the IFD, word-aligned; the strips follow.
    layout = []
    offset = extra_offset
    for _tag, kind, values in entries:
        size = len(values) * sizes[kind]
        if size > 4:
            layout.append(offset)
            offset += size + (size & 1)
        else:
            layout.append(None)
    strip_offsets = []
    for strip in strips:
        strip_offsets.append(offset)
        offset += len(strip) + (len(strip) & 1)
    if offset >= 1 << 32:
        raise ValueError("image too large for a TIFF file (over 4 GB compressed)")
    entries[5] = (273, LONG, strip_offsets)

    out = [b"II*\x00", struct.pack("<I", ifd_offset), struct.pack("<H", len(entries))]
    extras = []
    for (tag, kind, values), where in zip(entries, layout):
        data = pack(kind, values)
        if where is None:
            out.append(struct.pack("<HHI", tag, kind, len(values)) + data.ljust(4, b"\x00"))
        else:
            out.append(struct.pack("<HHII", tag, kind, len(values), where))
            extras.append(data + (b"\x00" if len(data) & 1 else b""))
    out.append(struct.pack("<I", 0))
    handle.write(b"".join(out) + b"".join(extras))
    for strip in strips:
        handle.write(strip + (b"\x00" if len(strip) & 1 else b""))


# ----------------------------------------------------------------------------------------------
# Checking an output path before a run
# ----------------------------------------------------------------------------------------------


def _named_inputs(inputs) -> list:
    """(what, path) pairs from a path, a list of paths or (what, path) pairs or LoadedImages, or a {what: path} map."""
    if inputs is None:
        return []
    if isinstance(inputs, (str, bytes, os.PathLike, LoadedImage)):
        inputs = [inputs]
    if isinstance(inputs, Mapping):
        return [(str(k), v) for k, v in inputs.items()]
    pairs = []
    for item in inputs if isinstance(inputs, Iterable) else [inputs]:
        if isinstance(item, LoadedImage):
            pairs.append(("input image", item.path))
        elif isinstance(item, tuple) and len(item) == 2:
            pairs.append((str(item[0]), item[1]))
        else:
            pairs.append(("input image", item))
    return pairs


def check_output_path(path: PathLike, inputs=(), *, what: str = "output") -> str:
    """Check before a long run that the result can be saved to `path`; return its absolute path.

    Checks: the extension is one of SUPPORTED_OUTPUT, the path is not a folder, its folder
    exists and is writable, and it is not the same file as any input (so an original is never
    overwritten). `inputs`: paths, (what, path) pairs such as ("content image", "cat.png"),
    LoadedImages, or a {what: path} mapping; None entries are ignored.
    Raises ImageError with a one-line message.
    """
    try:
        fspath = os.fsdecode(os.fspath(path))
    except TypeError:
        raise ImageError(f"{what}: expected a file path, received {path!r}") from None
    if not fspath:
        raise ImageError(f"{what}: expected a file path, received an empty path")
    shown = _quote(fspath)
    target = os.path.abspath(fspath)
    if os.path.isdir(target):
        raise ImageError(
            f"{what} {shown} is a folder; expected a file name such as {_quote(os.path.join(fspath, 'result.png'))}"
        )
    _check_extension(fspath, what, shown)
    folder = os.path.dirname(target)
    if not os.path.exists(folder):
        raise ImageError(f"{what} {shown} cannot be written: folder {_quote(folder)} does not exist")
    if not os.path.isdir(folder):
        raise ImageError(f"{what} {shown} cannot be written: {_quote(folder)} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImageError(f"{what} {shown} cannot be written: folder {_quote(folder)} is not writable")
    try:
        fd, probe = tempfile.mkstemp(prefix=".nst-keras-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except PermissionError:
        raise ImageError(f"{what} {shown} cannot be written: folder {_quote(folder)} is not writable") from None
    except OSError as exc:
        raise ImageError(f"{what} {shown} cannot be written in folder {_quote(folder)} ({_reason(exc)})") from None
    if os.path.exists(target) and not os.path.isfile(target):
        raise ImageError(f"{what} {shown} exists and is not a regular file; choose another name")

    real_target = os.path.realpath(target)
    for name, input_path in _named_inputs(inputs):
        if input_path is None:
            continue
        try:
            input_fspath = os.fsdecode(os.fspath(input_path))
        except TypeError:
            continue
        same = os.path.realpath(os.path.abspath(input_fspath)) == real_target
        if not same and os.path.exists(target) and os.path.exists(input_fspath):
            with contextlib.suppress(OSError):
                same = os.path.samefile(target, input_fspath)
        if same:
            raise ImageError(
                f"{what} {shown} is the same file as the {name}; choose another name so your original is not "
                "overwritten"
            )
    return target
