"""Opening an image file: the checks on the path, the size and the pixel limit, then the decode (formats.py).

The format is detected from the file's content, never from its name; every failure is one
ImageError line that names the file, what was expected and what was received.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import warnings
from typing import Optional

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from ..resize import resize
from ..schedule import fit_long_side
from .common import INPUT_KINDS, ImageError, LoadedImage, PathLike, file_path, quote, reason
from .formats import decode, exif_orientation, orient

_PILLOW_LOCK = threading.RLock()


@contextlib.contextmanager
def pillow_settings():
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
    fspath = file_path(path, what)
    shown = quote(fspath)
    if pixel_limit is None or pixel_limit < 1:
        raise ImageError(f"pixel limit: expected a whole number >= 1, received {pixel_limit!r}")
    if max_size is not None and max_size < 0:
        raise ImageError(f"max size: expected a whole number >= 0 (0: no limit), received {max_size!r}")
    max_size = int(max_size) if max_size else None
    min_side = max(1, int(min_side))

    handle = _open_file(fspath, what, shown)
    with handle, pillow_settings():
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
                f"{what} {shown} is not an image that can be read; expected {INPUT_KINDS}, "
                f"received {_describe_content(handle)}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file, not a bug
            raise ImageError(
                f"{what} {shown} is damaged and cannot be read ({reason(exc)}); expected a complete image file"
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
                rgb, alpha, bit_depth, icc = decode(image, fspath)
                orientation = exif_orientation(image)
            except MemoryError:
                raise ImageError(
                    f"{what} {shown} ({width}x{height}) is too large to decode in the available memory"
                ) from None
            except ImageError:
                raise
            except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file, not a bug
                raise ImageError(
                    f"{what} {shown} is damaged or truncated and cannot be decoded ({reason(exc)}); "
                    "expected a complete image file"
                ) from None

    rgb = orient(rgb, orientation)
    if alpha is not None:
        alpha = orient(alpha, orientation)
    if max_size and max(rgb.shape[:2]) > max_size:
        size = fit_long_side(rgb.shape[0], rgb.shape[1], max_size)
        rgb = np.clip(resize(rgb, *size), 0, 255)
        if alpha is not None:
            alpha = np.clip(resize(alpha, *size), 0, 255)
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    if alpha is not None:
        alpha = np.ascontiguousarray(alpha, dtype=np.float32)
    return LoadedImage(rgb=rgb, alpha=alpha, bit_depth=bit_depth, path=fspath, icc_profile=icc)


def _open_file(fspath: str, what: str, shown: str):
    """Open the file for binary reading, turning every OS problem into a one-line ImageError."""
    try:
        info = os.stat(fspath)
    except FileNotFoundError:
        raise ImageError(f"{what} {shown} does not exist; expected an image file ({INPUT_KINDS})") from None
    except NotADirectoryError:
        raise ImageError(f"{what} {shown} does not exist (a part of the path is a file, not a folder)") from None
    except PermissionError:
        raise ImageError(f"{what} {shown} cannot be read (permission denied)") from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"{what} {shown} cannot be read ({reason(exc)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{what} {shown} is a folder; expected an image file ({INPUT_KINDS})")
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"{what} {shown} is not a regular file; expected an image file ({INPUT_KINDS})")
    if info.st_size == 0:
        raise ImageError(f"{what} {shown} is empty (0 bytes); expected an image file ({INPUT_KINDS})")
    try:
        return open(fspath, "rb")  # noqa: SIM115 - closed by the caller's with statement
    except PermissionError:
        raise ImageError(f"{what} {shown} cannot be read (permission denied)") from None
    except OSError as exc:
        raise ImageError(f"{what} {shown} cannot be read ({reason(exc)})") from None


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
