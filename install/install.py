#!/usr/bin/env python3
"""Install nst-keras: the engine in its own virtualenv, the GIMP 3 plug-in, and the VGG19 weights.

    python3 install/install.py            # install or upgrade, into every GIMP 3 found
    python3 install/install.py --dry-run  # print every action, change nothing
    python3 install/install.py --uninstall

Steps: find GIMP 3 (native, Flatpak, Snap, macOS, Windows) and its user plug-in folder; make the
engine's virtualenv in the user data folder and pip-install this repository into it with the Keras
backend chosen for this platform (nst_keras_installer/backend_choice.py: PyTorch with CUDA on Windows
+ NVIDIA, PyTorch on Apple silicon, TensorFlow with CUDA on Linux + NVIDIA, else TensorFlow on the
CPU; --backend overrides, --torch-index gives PyTorch's wheel index), recorded in the virtualenv for
the engine; copy the plug-in and write
its settings file (which Python to start); fetch the weights; run `python -m nst_keras doctor`.
Everything it creates is listed in a manifest in the data folder, which --uninstall reads to
remove exactly that and nothing else.

Offline (no internet on this machine): pass --wheelhouse DIR, a folder of wheel files made on a machine with
internet (same OS and Python version) with
    python3 -m pip download -d DIR setuptools wheel "tensorflow>=2.16" keras numpy "pillow>=10" scipy
(pypng and tifffile too; "torch>=2.5" or "jax>=0.4.30" instead of TensorFlow with --backend torch or jax)
and --weights-file FILE with the VGG19 file downloaded there too; pip then reads DIR only (--no-index --find-links).

Exit codes: 0 installed (also with a warning when the weights could not be fetched), 1 error,
2 usage error, 3 Python too old, 4 engine installed but no GIMP 3 found, 5 no write permission,
6 pip failed.

This file is only the Python version gate; the installer itself is the package nst_keras_installer beside it
(one module per concern). Standard library only. This file must stay parseable by Python 3.6 so that old Pythons print the
refusal below instead of a SyntaxError: no walrus, no positional-only parameters, no match, no
parenthesized context managers, no `from __future__ import annotations`, no f-string `=`.
"""

import os
import platform
import sys

PROG = "nst-keras installer"
MIN_PYTHON = (3, 10)
EXIT_PYTHON = 3

if sys.version_info < MIN_PYTHON:
    sys.stderr.write(
        f"{PROG}: error: Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer is required, "
        f"this is Python {platform.python_version()} ({sys.executable}); "
        "install a newer Python and run this script with it (or use install/install.sh or install.ps1).\n"
    )
    sys.exit(EXIT_PYTHON)

sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout (it may be read-only)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nst_keras_installer.main import main  # noqa: E402 - only after the version gate

if __name__ == "__main__":
    sys.exit(main())
