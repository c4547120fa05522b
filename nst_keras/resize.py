"""Resizing float images (H, W) or (H, W, C) with Pillow's Lanczos filter, keeping float precision."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .schedule import fit_long_side  # noqa: F401 - importable from here as before (bench/)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a float image to (height, width) channel by channel (Pillow 'F' mode, Lanczos)."""
    image = np.asarray(image, dtype=np.float32)
    if image.shape[0] == height and image.shape[1] == width:
        return image.copy()
    if image.ndim == 2:
        return _resize_plane(image, height, width)
    planes = [_resize_plane(image[..., c], height, width) for c in range(image.shape[-1])]
    return np.stack(planes, axis=-1)


def _resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(img.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)
