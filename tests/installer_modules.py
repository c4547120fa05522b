"""The installer's package (install/nst_keras_installer) imported by tests, without leaving byte code in install/."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

INSTALL_PY = Path(__file__).resolve().parents[1] / "install" / "install.py"


def load_installer(module: str = "common"):
    """A module of the installer's package install/nst_keras_installer (no byte code left in install/)."""
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    sys.path.insert(0, str(INSTALL_PY.parent))
    try:
        return importlib.import_module(f"nst_keras_installer.{module}")
    finally:
        sys.path.remove(str(INSTALL_PY.parent))
        sys.dont_write_bytecode = saved
