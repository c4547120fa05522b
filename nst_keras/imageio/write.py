"""Writing image files atomically, and checking an output path before a long run starts.

The format follows the extension; the data goes to a temporary file in the same folder that
then replaces the target, so the file appears complete or not at all.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from typing import Optional

import numpy as np
from PIL import Image

from .common import SUPPORTED_OUTPUT, ImageError, LoadedImage, PathLike, file_path, quote, reason
from .formats import write_png16, write_tiff

_OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
_JPEG_QUALITY = 95


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
    fspath = file_path(path, what)
    shown = quote(fspath)
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
            write_tiff(handle, pixels, icc_profile)
        elif fmt == "PNG" and bit_depth == 16:
            write_png16(handle, pixels, icc_profile)
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
            f"{what} {shown} is a folder; expected a file name such as {quote(os.path.join(fspath, 'result' + ext))}"
        )
    existed = os.path.exists(target)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{ext}", dir=folder)
    except FileNotFoundError:
        raise ImageError(f"{what} {shown} cannot be written: folder {quote(folder)} does not exist") from None
    except NotADirectoryError:
        raise ImageError(f"{what} {shown} cannot be written: {quote(folder)} is not a folder") from None
    except PermissionError:
        raise ImageError(f"{what} {shown} cannot be written: folder {quote(folder)} is not writable") from None
    except OSError as exc:
        raise ImageError(f"{what} {shown} cannot be written ({reason(exc)})") from None
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
        raise ImageError(f"{what} {shown} could not be written ({reason(exc)}); {kept}") from exc


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
    fspath = file_path(path, what)
    shown = quote(fspath)
    target = os.path.abspath(fspath)
    if os.path.isdir(target):
        raise ImageError(
            f"{what} {shown} is a folder; expected a file name such as {quote(os.path.join(fspath, 'result.png'))}"
        )
    _check_extension(fspath, what, shown)
    folder = os.path.dirname(target)
    if not os.path.exists(folder):
        raise ImageError(f"{what} {shown} cannot be written: folder {quote(folder)} does not exist")
    if not os.path.isdir(folder):
        raise ImageError(f"{what} {shown} cannot be written: {quote(folder)} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImageError(f"{what} {shown} cannot be written: folder {quote(folder)} is not writable")
    try:
        fd, probe = tempfile.mkstemp(prefix=".nst-keras-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except PermissionError:
        raise ImageError(f"{what} {shown} cannot be written: folder {quote(folder)} is not writable") from None
    except OSError as exc:
        raise ImageError(f"{what} {shown} cannot be written in folder {quote(folder)} ({reason(exc)})") from None
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
