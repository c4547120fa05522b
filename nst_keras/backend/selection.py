"""Which Keras backend the engine runs on, chosen once, before Keras is imported (stdlib only).

Keras reads KERAS_BACKEND when it is first imported and cannot change it afterwards, so the
choice is made here and nowhere else: `select(requested)` resolves the request, sets
KERAS_BACKEND and what that framework needs on a desktop shared with other programs, and
returns the name. `auto` means, in this order:

1. KERAS_BACKEND, when set (the user's or a caller's explicit choice);
2. the backend the installer recorded: NST_KERAS_BACKEND, or the file RECORD_FILE_NAME in the
   engine's environment (sys.prefix), written by install/ with the backend and the reason;
3. the best installed one for the device found: a CUDA build on an NVIDIA machine, PyTorch on
   Apple silicon (MPS), else the first of CPU_PREFERENCE that is installed (the order measured
   by bench/bench_backends.py on this project's CPU machines).

Nothing here imports Keras or a framework: probing reads package metadata and files only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import sys
from typing import Optional

BACKENDS = ("tensorflow", "torch", "jax")
CHOICES = ("auto",) + BACKENDS
RECORD_ENV = "NST_KERAS_BACKEND"
RECORD_FILE_NAME = "nst-keras-backend.json"

# Fastest first on CPU, measured with bench/bench_backends.py (one value-and-gradient at 512 px,
# alternating, median of 8): TensorFlow 1.00, JAX and PyTorch slower (see the README's table).
CPU_PREFERENCE = ("tensorflow", "jax", "torch")

# Where a GPU is found: the build that uses it, in this order of preference.
CUDA_PREFERENCE = ("torch", "tensorflow", "jax")


def record_path(prefix: Optional[str] = None) -> str:
    """The installer's record of the chosen backend: a JSON file in the engine's environment."""
    return os.path.join(prefix or sys.prefix, RECORD_FILE_NAME)


def recorded_backend(prefix: Optional[str] = None) -> Optional[tuple]:
    """(name, where it was recorded) from NST_KERAS_BACKEND or the installer's file; None if neither names one."""
    value = os.environ.get(RECORD_ENV, "").strip().lower()
    if value and value != "auto":
        return value, RECORD_ENV
    try:
        with open(record_path(prefix), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    name = data.get("backend") if isinstance(data, dict) else None
    if isinstance(name, str) and name.strip().lower() in BACKENDS:
        return name.strip().lower(), record_path(prefix)
    return None


def installed(name: str) -> bool:
    """Whether the framework of backend `name` is importable (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _package_file(package: str, *parts: str) -> Optional[str]:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, *parts)
        if os.path.isfile(path):
            return path
    return None


def _read(path: Optional[str]) -> str:
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def cuda_build(name: str) -> bool:
    """Whether the installed framework `name` is a build that can use an NVIDIA GPU (read from its files)."""
    if name == "torch":  # torch/version.py: cuda = '12.8' in CUDA builds, None in CPU builds
        text = _read(_package_file("torch", "version.py"))
        for line in text.splitlines():
            if line.startswith("cuda") and "=" in line:
                return "None" not in line.split("=", 1)[1]
        return False
    if name == "tensorflow":  # tensorflow[and-cuda] brings NVIDIA's libraries as packages
        return installed("nvidia") and bool(_package_file("nvidia", "cudnn", "__init__.py") or _nvidia_module("cudnn"))
    if name == "jax":  # jax[cuda12] installs the plug-in
        return installed("jax_cuda12_plugin") or installed("jax_cuda13_plugin")
    return False


def _nvidia_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(f"nvidia.{name}") is not None
    except (ImportError, ValueError):
        return False


def has_nvidia_gpu() -> bool:
    """An NVIDIA GPU with its driver: /dev/nvidia0 or /proc/driver/nvidia (Linux), nvidia-smi elsewhere."""
    if os.path.exists("/dev/nvidia0"):
        return True
    gpus = "/proc/driver/nvidia/gpus"
    if os.path.isdir(gpus) and os.listdir(gpus):
        return True
    return sys.platform == "win32" and shutil.which("nvidia-smi") is not None


def is_apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine().lower() == "arm64"


def best_installed() -> tuple:
    """(name, reason): the best installed backend for this machine's device."""
    have = [name for name in BACKENDS if installed(name)]
    if not have:
        raise ValueError(
            "backend: expected one of tensorflow, torch or jax to be installed, received none "
            "(install the engine with its installer, or pip install tensorflow)"
        )
    if has_nvidia_gpu():
        for name in CUDA_PREFERENCE:
            if name in have and cuda_build(name):
                return name, f"the installed {name} build that uses the NVIDIA GPU"
    if is_apple_silicon() and "torch" in have:
        return "torch", "PyTorch uses the Apple GPU (MPS)"
    for name in CPU_PREFERENCE:
        if name in have:
            return name, f"{name}: the fastest installed backend on CPU (bench/bench_backends.py)"
    return have[0], f"{have[0]}: the only installed backend"


def resolve(requested: str = "auto") -> tuple:
    """(name, reason) for a request in CHOICES, without changing anything."""
    requested = (requested or "auto").strip().lower()
    if requested not in CHOICES:
        raise ValueError(f"backend: expected one of {', '.join(CHOICES)}, received {requested!r}")
    if requested != "auto":
        return requested, "--backend"
    env = os.environ.get("KERAS_BACKEND", "").strip().lower()
    if env:
        return env, "KERAS_BACKEND"
    recorded = recorded_backend()
    if recorded is not None and installed(recorded[0]):
        return recorded[0], f"recorded by the installer ({recorded[1]})"
    return best_installed()


def _keras_backend_in_use() -> Optional[str]:
    """The backend of an already imported Keras (None when Keras is not imported yet)."""
    keras = sys.modules.get("keras")
    if keras is None:
        return None
    try:
        return str(keras.backend.backend())
    except Exception:  # noqa: BLE001 - a half-imported keras: take the environment's word
        return os.environ.get("KERAS_BACKEND") or "tensorflow"


_state = {"name": None, "reason": None}


def select(requested: str = "auto") -> str:
    """Choose the backend for this process (before Keras is imported) and return its name.

    Raises ValueError for an unknown or uninstalled backend, and when Keras was already imported
    with another backend than the one requested (Keras cannot switch in a running process).
    """
    requested = (requested or "auto").strip().lower()
    in_use = _keras_backend_in_use()
    if in_use is not None:
        if in_use not in BACKENDS:
            raise ValueError(
                f"backend: expected Keras on one of {', '.join(BACKENDS)}, received Keras already imported "
                f"with the {in_use!r} backend"
            )
        if requested not in ("auto", in_use):
            if requested not in CHOICES:
                resolve(requested)  # the unknown-name message
            raise ValueError(
                f"backend: expected {requested}, but Keras was already imported with the {in_use} backend "
                f"(set KERAS_BACKEND={requested} before importing keras, or use backend 'auto')"
            )
        if _state["name"] != in_use:
            _state.update(name=in_use, reason="Keras was already imported with it")
            configure_environment(in_use)
        return in_use
    name, reason = resolve(requested)
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, received {name!r} (from {reason})")
    if not installed(name):
        raise ValueError(
            f"backend: expected {name} to be installed ({reason}), but it is not: "
            f"pip install 'nst-keras[{name}]', or choose another --backend"
        )
    os.environ["KERAS_BACKEND"] = name
    configure_environment(name)
    _state.update(name=name, reason=reason)
    return name


def selected() -> Optional[str]:
    """The backend chosen in this process, or None before `select` (or Keras's import) chose one."""
    return _state["name"]


def reason() -> Optional[str]:
    return _state["reason"]


def configure_environment(name: str) -> None:
    """What each framework reads from the environment at import, for a desktop that runs other programs too.

    Only defaults: a value the user set is kept.
    - PyTorch: OpenMP threads sleep while they wait (OMP_WAIT_POLICY=PASSIVE). Spinning made each
      step 10x slower while other processes shared the CPU (measured on this project's machines).
      CUDA memory in expandable segments (less fragmentation across image sizes), and operations
      MPS lacks fall back to the CPU instead of failing.
    - JAX: take GPU memory as needed instead of 75% of it up front (the desktop and GIMP keep theirs).
    - TensorFlow (and XLA under JAX): C++ start-up chatter kept to warnings and errors.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if name == "torch":
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
        os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    elif name == "jax":
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
