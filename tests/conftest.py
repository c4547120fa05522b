"""Shared test set-up: no test touches the user's Keras cache or the network."""

import os
import tempfile

# Before anything imports keras: keras creates its cache folder on import.
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="nst-keras-test-keras-home-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.pop("NST_KERAS_WEIGHTS", None)
os.environ.pop("NST_KERAS_WEIGHTS_URL", None)


import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sample_images():
    """The bundled sample photo and style as float32 RGB arrays."""
    from PIL import Image

    def load(name):
        return np.asarray(Image.open(ROOT / "samples" / name).convert("RGB"), dtype=np.float32)

    return load("chelsea.png"), load("style-swirls.png")
