"""The Keras backend the engine gets: this machine's facts, the choice, pip's command lines, the record.

- `probe_facts(plat)`: what backend_choice.choose needs (system, machine, an NVIDIA GPU), probed here;
- `pick(facts, backend, device)`: --backend and --gpu/--cpu to one Choice (InstallError, exit 2, if impossible);
- `plan(choice, ...)`: the pip commands that install the engine and that backend, and what to tell the user;
- `record_path(venv)`, `record_data(plan)`: the JSON file in the engine's environment that the engine reads when
  its backend is `auto` (nst_keras/backend/selection.py, loaded from the checkout by its path).

PyTorch's CUDA wheels for Windows (and its small CPU wheels for Linux) are on PyTorch's own package index. Its
address is not written here: the user gives it (--torch-index URL or NST_KERAS_TORCH_INDEX), copied from PyTorch's
install selector; without it PyTorch comes from pip's default index and the user is told what that means.
"""

import configparser
import importlib.util
import os
import platform
import re
import shutil
from typing import NamedTuple, Optional

from .backend_choice import CPU_FASTEST, TORCH_CPU_INDEX, TORCH_CUDA_INDEX, Choice, Facts, choose, split_override
from .common import EXIT_USAGE, PROG, REPO, InstallError, run_quiet

TORCH_INDEX_ENV = "NST_KERAS_TORCH_INDEX"
GPU_ORDER = ("torch", "jax", "tensorflow")  # --gpu where the platform's own choice is the CPU: who can use the GPU
NAMES = {"tensorflow": "TensorFlow", "torch": "PyTorch", "jax": "JAX"}
CUDA_WHEELS_HINT = (
    "re-run with --torch-index URL, the CUDA wheel index that PyTorch's website's install selector gives for "
    "your CUDA version"
)
CPU_WHEELS_HINT = (
    "for the much smaller CPU build, re-run with --torch-index URL, the CPU wheel index that PyTorch's website's "
    "install selector gives"
)


def nvidia_gpu_present():
    """True when an NVIDIA GPU and driver are visible, probed without any framework."""
    if shutil.which("nvidia-smi"):
        code, out = run_quiet(["nvidia-smi", "-L"])
        if code == 0 and "GPU" in out:
            return True
    gpus = "/proc/driver/nvidia/gpus"
    if os.path.isdir(gpus) and os.listdir(gpus):
        return True
    return os.path.exists("/dev/nvidia0")


def probe_facts(plat, machine=None, nvidia=None):
    """Facts for `plat` ('linux', 'windows', 'macos'); machine and nvidia are probed unless given (tests)."""
    machine = machine or platform.machine() or "unknown"
    return Facts(plat, machine, nvidia_gpu_present() if nvidia is None else bool(nvidia))


def pick(facts, backend="auto", device="auto"):
    """The Choice for --backend NAME[:cpu|:gpu] (or auto) and --gpu/--cpu (or auto); InstallError(exit 2) if
    the request is malformed or impossible here."""
    try:
        return _pick(facts, (backend or "auto").strip(), device or "auto")
    except ValueError as error:
        raise InstallError(str(error), EXIT_USAGE) from None


def _pick(facts, backend, device):
    if backend.lower() != "auto":
        name, want = split_override(backend)
        if device != "auto":
            if want and want != device:
                raise ValueError(
                    f"--{device}: expected a --backend without :cpu or :gpu, or with :{device}, "
                    f"received --backend {backend}"
                )
            want = device
        return choose(facts, f"{name}:{want}" if want else name)
    if device == "cpu":
        choice = choose(facts, CPU_FASTEST + ":cpu")
        return choice._replace(reason=f"--cpu: the CPU, with {CPU_FASTEST}, the fastest backend on CPU")
    choice = choose(facts)
    if device != "gpu" or choice.device != "cpu":
        return choice
    for name in GPU_ORDER:
        try:
            gpu = choose(facts, name + ":gpu")
        except ValueError:
            continue
        where = f"{facts.system} {facts.machine}"
        return gpu._replace(reason=f"--gpu: {name} on {gpu.device.upper()}, a backend that can use this GPU on {where}")
    found = "an NVIDIA GPU" if facts.nvidia else "no NVIDIA GPU (looked with nvidia-smi, /proc/driver/nvidia)"
    raise ValueError(
        f"--gpu: expected a GPU that TensorFlow, PyTorch or JAX can use on {facts.system} {facts.machine}, "
        f"received {found}"
    )


def engine_requirements():
    """The engine's own requirements (setup.cfg's install_requires), one spec each."""
    parser = configparser.ConfigParser()
    try:
        parser.read(os.path.join(REPO, "setup.cfg"), encoding="utf-8")
        lines = parser.get("options", "install_requires").splitlines()
    except (configparser.Error, OSError):
        lines = []
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def is_tensorflow(spec):
    return re.match(r"^tensorflow\s*([<>=!~;\[]|$)", spec) is not None


def tensorflow_requirement():
    """The TensorFlow requirement of setup.cfg, e.g. 'tensorflow>=2.16'."""
    return next((spec for spec in engine_requirements() if is_tensorflow(spec)), "tensorflow")


class Plan(NamedTuple):
    choice: Choice  # as installed: device 'cpu' when PyTorch's CUDA wheels cannot be had
    commands: list  # argument lists for `pip install`, after the common options; REPO stands for the engine
    notes: list  # printed under the choice
    warnings: list  # repeated at the end of the install
    installed: list  # the requirement specs named to pip, besides the engine
    index_url: Optional[str]  # the user's --torch-index, when used


def plan(choice, torch_index=None, no_deps=False, offline=False):
    """What pip installs for `choice`, in order.

    TensorFlow: one command, the engine with its requirements (TensorFlow is one of them) and, for CUDA, the
    CUDA build. PyTorch and JAX: the engine's requirements without TensorFlow plus the backend, then the engine
    itself with --no-deps (its install_requires names TensorFlow, which would come along otherwise). PyTorch from
    --torch-index: that index alone for PyTorch (what PyTorch's selector gives), then the rest as above.
    no_deps (a test hook): the engine only. offline (--wheelhouse): no index is used at all.
    """
    notes, warnings = [], []
    index_url = (torch_index or "").strip() or None
    if index_url and choice.backend != "torch":
        notes.append(f"--torch-index is for PyTorch only: {NAMES[choice.backend]} comes from pip's usual index")
        index_url = None
    if index_url and offline:
        notes.append("--wheelhouse: pip reads only the wheel files there, so --torch-index is not used")
        index_url = None
    if choice.index == TORCH_CUDA_INDEX and not index_url:
        if offline:
            notes.append("the wheelhouse must hold PyTorch's CUDA wheel for the GPU (pip's default one is CPU-only)")
        else:
            choice = choice._replace(device="cpu", reason=choice.reason + "; on the CPU for now: no --torch-index")
            warnings.append(
                "PyTorch was installed from pip's default index, whose Windows wheel runs on the CPU only. "
                f"The GPU needs PyTorch's CUDA wheels: {CUDA_WHEELS_HINT}"
            )
    if choice.index == TORCH_CPU_INDEX and not index_url and not offline:
        notes.append(
            f"PyTorch from pip's default index is, on Linux, a large CUDA build (gigabytes); {CPU_WHEELS_HINT}"
        )
    reqs = list(choice.requirements)
    if choice.backend == "tensorflow":
        own = tensorflow_requirement()
        extra = [spec for spec in reqs if spec != own]  # the CPU one is the engine's own
        commands = [(["--no-deps"] if no_deps else []) + [REPO] + extra]
        installed = extra if no_deps else [own] + extra
    elif no_deps:
        notes.append(f"--no-deps: installing nst-keras only, not {' '.join(reqs)} nor any dependency")
        commands, installed = [["--no-deps", REPO]], []
    else:
        deps = [spec for spec in engine_requirements() if not is_tensorflow(spec)]
        if index_url:
            commands = [["--index-url", index_url] + reqs, deps]
        else:
            commands = [deps + reqs]
        commands.append(["--no-deps", REPO])
        installed = reqs + deps
    return Plan(choice, commands, notes, warnings, installed, index_url)


def download_size(plan_):
    """How much the first install downloads, in words."""
    choice = plan_.choice
    big = choice.device == "cuda" or (choice.index == TORCH_CPU_INDEX and not plan_.index_url)
    return f"{NAMES[choice.backend]}, {'a few GB' if big else 'several hundred MB'}"


def _selection():
    """The engine's nst_keras/backend/selection.py (stdlib only), loaded from the checkout by its path."""
    path = os.path.join(REPO, "nst_keras", "backend", "selection.py")
    spec = importlib.util.spec_from_file_location("nst_keras_backend_selection", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record_path(venv):
    """Where the engine in `venv` looks for the installer's record (its sys.prefix is the virtualenv)."""
    return _selection().record_path(venv)


def record_data(plan_, version):
    """The record's JSON object: the backend and device installed, why, and what pip was asked for."""
    choice = plan_.choice
    return {
        "backend": choice.backend,
        "device": choice.device,
        "reason": choice.reason,
        "installed": ["nst-keras " + version] + list(plan_.installed),
        "index": choice.index if plan_.index_url else None,
        "index_url": plan_.index_url,
        "installed_by": PROG,
    }
