"""What reading and writing share: the error type, the loaded image, the supported types, paths in messages."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

SUPPORTED_INPUT = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
SUPPORTED_OUTPUT = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
INPUT_KINDS = "PNG, JPEG, TIFF, WebP or BMP"

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


def quote(path: str) -> str:
    """A path as messages show it: in quotes, with line breaks escaped (the message stays one line)."""
    return "'" + str(path).replace("\n", "\\n").replace("\r", "\\r") + "'"


def reason(exc: BaseException) -> str:
    """The short reason an exception gives (an OSError's strerror), for the end of a message."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text or type(exc).__name__


def file_path(path, what: str) -> str:
    """`path` (str, bytes or os.PathLike) as text; ImageError when it is not a path or is empty."""
    try:
        fspath = os.fsdecode(os.fspath(path))
    except TypeError:
        raise ImageError(f"{what}: expected a file path, received {path!r}") from None
    if not fspath:
        raise ImageError(f"{what}: expected a file path, received an empty path")
    return fspath
