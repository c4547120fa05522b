"""Facts about the network weights files that the engine and the installer share: names, hashes, URLs, folders.

Standard library only, and no import of the rest of nst_keras: the installer (install/) runs on the system Python
without the engine installed and loads this file from the checkout by its path.

The folder rules are Keras's own: Keras's home is $KERAS_HOME, else ~/.keras (/tmp/.keras when the home folder
cannot be written), as keras.backend.config computes it; keras.utils.get_file then keeps downloads in that folder's
"models" subfolder, or in /tmp/.keras/models when the folder cannot be written (nor created).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Optional

ENV_WEIGHTS = "NST_KERAS_WEIGHTS"  # a weights file (or "random") instead of Keras's
ENV_BASE_URL = "NST_KERAS_WEIGHTS_URL"  # a mirror's base URL: the file name is appended
CACHE_SUBDIR = "models"


@dataclass(frozen=True)
class WeightsSpec:
    """One pretrained weights file as Keras publishes it."""

    backbone: str
    filename: str
    origin: str
    md5: str
    size_mb: float

    @property
    def label(self) -> str:
        return self.backbone.upper()


_KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications"

SPECS = {
    "vgg19": WeightsSpec(
        backbone="vgg19",
        filename="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        origin=f"{_KERAS_APPS}/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        md5="253f8cb515780f3b799900260a226db6",
        size_mb=80,
    ),
    "vgg16": WeightsSpec(
        backbone="vgg16",
        filename="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        origin=f"{_KERAS_APPS}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        md5="6d6bbae143d832006294945121d1f1fc",
        size_mb=59,
    ),
}


def keras_home(environ=None) -> str:
    """Keras's base folder (where keras.json lives), as keras.backend.config computes it, read from `environ` now."""
    environ = os.environ if environ is None else environ
    home = environ.get("KERAS_HOME")
    if home:
        return os.path.abspath(os.path.expanduser(home))
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return os.path.join(base, ".keras")


def can_write(folder: str) -> bool:
    """True when `folder` is writable, or does not exist yet but could be created."""
    folder = os.path.abspath(folder)
    while not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent
    return os.path.isdir(folder) and os.access(folder, os.W_OK)


def cache_base(cache_dir: Optional[str] = None, environ=None) -> str:
    """The folder keras.utils.get_file downloads under: `cache_dir` or Keras's home, or /tmp/.keras when unwritable."""
    base = os.path.expanduser(os.fspath(cache_dir)) if cache_dir else keras_home(environ)
    if not can_write(base):
        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return os.path.abspath(base)


def cache_path(backbone: str, cache_dir: Optional[str] = None, environ=None) -> str:
    """Where keras.utils.get_file keeps the backbone's weights: <Keras's home>/models/<file name>."""
    return os.path.join(cache_base(cache_dir, environ), CACHE_SUBDIR, SPECS[backbone].filename)
