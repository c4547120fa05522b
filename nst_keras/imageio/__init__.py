"""Reading and writing image files: the only part of nst-keras that touches image files.

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

One module per job: common.py (the error, the loaded image, the path rules), read.py (opening
and checking a file), formats.py (pixels and metadata of each format: decoding, EXIF orientation,
the 16-bit encoders through pypng and tifffile), write.py (atomic saving, the output-path check).
"""

from .common import SUPPORTED_INPUT, SUPPORTED_OUTPUT, ImageError, LoadedImage, PathLike
from .read import load_image
from .write import check_output_path, save_image

__all__ = [
    "SUPPORTED_INPUT",
    "SUPPORTED_OUTPUT",
    "ImageError",
    "LoadedImage",
    "PathLike",
    "check_output_path",
    "load_image",
    "save_image",
]
