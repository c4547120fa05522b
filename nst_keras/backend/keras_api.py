"""Keras, imported only after the backend is chosen: the engine's modules take keras and ops from here.

Importing this module runs the selection (with 'auto' when nothing chose yet), which sets
KERAS_BACKEND and what the framework reads from the environment at start (OMP_WAIT_POLICY for
PyTorch, ...). So `from nst_keras.features import FeatureExtractor` in a user's script gets the
same set-up as a CLI run.
"""

from . import name

name()

import keras  # noqa: E402
from keras import ops  # noqa: E402

__all__ = ["keras", "ops"]
