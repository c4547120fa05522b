"""Resizing float images (H, W) or (H, W, C) with Pillow, keeping float precision: the one resizer of nst-keras."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .schedule import fit_long_side  # noqa: F401 - importable from here as before (bench/)

FILTERS = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC}


def resize(image: np.ndarray, height: int, width: int, filter: str = "lanczos") -> np.ndarray:
    """Resize a float image to (height, width) channel by channel (Pillow 'F' mode; Lanczos or bicubic).

    Returns float32, a copy even when the size is already right; values are not clipped.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.shape[0] == height and image.shape[1] == width:
        return image.copy()
    resample = FILTERS[filter]
    if image.ndim == 2:
        return _resize_plane(image, height, width, resample)
    planes = [_resize_plane(image[..., c], height, width, resample) for c in range(image.shape[-1])]
    return np.stack(planes, axis=-1)


def _resize_plane(plane: np.ndarray, height: int, width: int, resample) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(img.resize((width, height), resample), dtype=np.float32)
