"""Which Keras backend the installer puts in the engine's environment, per platform (stdlib only, pure).

`choose(facts, override)` takes the platform's facts (found by the installer's probes, or made
up by tests) and returns the backend, the pip requirements to install it, and the reason, in
words the installer prints. The rules (README, "Backends"):

- Linux x86_64 with an NVIDIA GPU: LINUX_NVIDIA_BACKEND's CUDA build. TensorFlow's CUDA wheels
  are the path this project has run for the longest; bench/gpu_check.py measures all three
  backends on a GPU machine, and this constant follows its result.
- Windows with an NVIDIA GPU: PyTorch with CUDA (TensorFlow has had no GPU on native Windows
  since 2.10). Its CUDA wheels come from PyTorch's own package index, not the default one: the
  choice names it (`index`), and the installer passes the address the user gives (--torch-index) to pip.
- macOS on Apple silicon: PyTorch, whose macOS arm64 wheels use the Apple GPU (MPS).
- Anything else: the CPU, with the backend that was fastest on CPU in bench/bench_backends.py.

`override` ('tensorflow', 'torch', 'jax', each optionally with ':cpu' or ':gpu') replaces the rule.
The installer records the result in the engine's environment (nst_keras.backend.selection reads it).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

BACKENDS = ("tensorflow", "torch", "jax")
CPU_FASTEST = "tensorflow"  # bench/bench_backends.py, 512 px: TensorFlow 1.00, PyTorch and JAX slower
LINUX_NVIDIA_BACKEND = "tensorflow"  # until bench/gpu_check.py has measured the three on a GPU machine
TORCH_CUDA_INDEX = "pytorch-cuda"  # PyTorch's own package index of CUDA wheels (its address: the user's --torch-index)

# pip requirements per backend and device kind. Linux's default torch wheel is a CUDA build (GBs);
# the CPU one is much smaller and comes from PyTorch's CPU index (TORCH_CPU_INDEX).
TORCH_CPU_INDEX = "pytorch-cpu"
REQUIREMENTS = {
    ("tensorflow", "cpu"): ["tensorflow>=2.16"],
    ("tensorflow", "cuda"): ["tensorflow[and-cuda]>=2.16"],
    ("torch", "cpu"): ["torch>=2.5"],
    ("torch", "cuda"): ["torch>=2.5"],
    ("torch", "mps"): ["torch>=2.5"],
    ("jax", "cpu"): ["jax>=0.4.30"],
    ("jax", "cuda"): ["jax[cuda12]>=0.4.30"],
}


class Facts(NamedTuple):
    """What the installer's probes found: system 'linux'|'windows'|'macos', machine (platform.machine())."""

    system: str
    machine: str
    nvidia: bool = False  # an NVIDIA GPU with its driver (nvidia-smi, /proc/driver/nvidia)


class Choice(NamedTuple):
    backend: str
    requirements: list  # pip requirement specs
    device: str  # 'cpu', 'cuda' or 'mps'
    reason: str
    index: Optional[str] = None  # a package index other than the default one (TORCH_CUDA_INDEX, TORCH_CPU_INDEX)


def _x86(machine: str) -> bool:
    return machine.lower() in ("x86_64", "amd64")


def _make(backend: str, device: str, reason: str, facts: Facts) -> Choice:
    index = None
    if backend == "torch" and device == "cuda" and facts.system == "windows":
        index = TORCH_CUDA_INDEX  # the default index has only CPU wheels for Windows
    if backend == "torch" and device == "cpu" and facts.system == "linux" and _x86(facts.machine):
        index = TORCH_CPU_INDEX  # the default index's Linux wheel carries CUDA: gigabytes for nothing
    return Choice(backend, list(REQUIREMENTS[(backend, device)]), device, reason, index)


def _gpu_device(backend: str, facts: Facts) -> Optional[str]:
    """The GPU kind `backend` can use on this platform, or None."""
    if facts.nvidia:
        if facts.system == "linux" and _x86(facts.machine):
            return "cuda"
        if facts.system == "linux" and backend in ("torch", "jax"):  # aarch64 (e.g. Grace, Jetson): wheels exist
            return "cuda"
        if facts.system == "windows" and backend == "torch":
            return "cuda"
    if facts.system == "macos" and facts.machine.lower() == "arm64" and backend == "torch":
        return "mps"
    return None


def split_override(override: str) -> tuple:
    """(backend, '' | 'cpu' | 'gpu') of an override such as 'torch:gpu'; ValueError naming what is expected."""
    name, _, want = override.strip().lower().partition(":")
    if name not in BACKENDS or want not in ("", "cpu", "gpu"):
        raise ValueError(
            f"--backend: expected one of {', '.join(BACKENDS)}, optionally with :cpu or :gpu, received {override!r}"
        )
    return name, want


def choose(facts: Facts, override: Optional[str] = None) -> Choice:
    """(backend, requirements, device, reason, index) for this platform; `override` as in the module docstring."""
    system = facts.system.lower()
    if system not in ("linux", "windows", "macos"):
        raise ValueError(f"system: expected linux, windows or macos, received {facts.system!r}")
    facts = facts._replace(system=system)
    if override:
        name, want = split_override(override)
        gpu = _gpu_device(name, facts)
        if want == "gpu" and gpu is None:
            raise ValueError(
                f"--backend {override}: expected a GPU that {name} can use on {system} {facts.machine}, "
                f"received {'an NVIDIA GPU' if facts.nvidia else 'no NVIDIA GPU'}"
                f"{' (only PyTorch uses the Apple GPU)' if system == 'macos' else ''}"
            )
        device = "cpu" if want == "cpu" or gpu is None else gpu
        return _make(name, device, f"--backend {override}: {name} on {device.upper()}", facts)

    if facts.nvidia and system == "linux" and _x86(facts.machine):
        return _make(
            LINUX_NVIDIA_BACKEND,
            "cuda",
            f"Linux x86_64 with an NVIDIA GPU: {LINUX_NVIDIA_BACKEND} with CUDA (bench/gpu_check.py decides which "
            "backend's CUDA build this is)",
            facts,
        )
    if facts.nvidia and system == "windows":
        return _make(
            "torch",
            "cuda",
            "Windows with an NVIDIA GPU: PyTorch with CUDA (TensorFlow has no GPU support on native Windows)",
            facts,
        )
    if system == "macos" and facts.machine.lower() == "arm64":
        return _make("torch", "mps", "macOS on Apple silicon: PyTorch, which uses the Apple GPU (MPS)", facts)
    where = "an NVIDIA GPU on Linux " + facts.machine if facts.nvidia and system == "linux" else "no GPU it can use"
    return _make(
        CPU_FASTEST,
        "cpu",
        f"{system} {facts.machine} with {where}: the CPU, with {CPU_FASTEST}, the fastest backend on CPU "
        "(bench/bench_backends.py)",
        facts,
    )
