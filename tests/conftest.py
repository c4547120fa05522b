"""Shared test set-up: no test touches the user's Keras cache or the network."""

import os
import tempfile

# Before anything imports keras: keras creates its cache folder on import.
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="nst-keras-test-keras-home-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.pop("NST_KERAS_WEIGHTS", None)
os.environ.pop("NST_KERAS_WEIGHTS_URL", None)
