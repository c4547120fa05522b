"""Shared test set-up: no test touches the user's Keras cache or the network."""

import os
import tempfile

# Before anything imports keras: keras creates its cache folder on import.
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="nst-keras-test-keras-home-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.pop("NST_KERAS_WEIGHTS", None)
os.environ.pop("NST_KERAS_WEIGHTS_URL", None)

# The Keras backend of the whole session (and of the CLI runs it starts): NST_KERAS_TEST_BACKEND,
# default tensorflow. scripts/test.sh runs the suite on TensorFlow, then the tests marked
# `backends` on torch and on jax.
TEST_BACKEND = os.environ.get("NST_KERAS_TEST_BACKEND", "").strip().lower() or "tensorflow"
if TEST_BACKEND not in ("tensorflow", "torch", "jax"):
    raise SystemExit(f"NST_KERAS_TEST_BACKEND: expected tensorflow, torch or jax, received {TEST_BACKEND!r}")
os.environ["KERAS_BACKEND"] = TEST_BACKEND
os.environ.pop("NST_KERAS_BACKEND", None)


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


def pytest_report_header(config):
    return f"Keras backend: {TEST_BACKEND} (NST_KERAS_TEST_BACKEND)"


@pytest.fixture(scope="session")
def test_backend():
    """The Keras backend this session runs on."""
    return TEST_BACKEND
