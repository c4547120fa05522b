"""install/nst_keras_installer/backend_choice.py: the backend the installer picks on each platform, with fake probes."""

import importlib.util
import pathlib

import pytest

PATH = pathlib.Path(__file__).resolve().parent.parent / "install" / "nst_keras_installer" / "backend_choice.py"
spec = importlib.util.spec_from_file_location("backend_choice", PATH)
bc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bc)
Facts = bc.Facts


@pytest.mark.parametrize(
    "facts, backend, device, index, words",
    [
        (Facts("linux", "x86_64", nvidia=True), bc.LINUX_NVIDIA_BACKEND, "cuda", None, "NVIDIA GPU"),
        (Facts("linux", "x86_64"), bc.CPU_FASTEST, "cpu", None, "fastest backend on CPU"),
        (Facts("linux", "aarch64", nvidia=True), bc.CPU_FASTEST, "cpu", None, "NVIDIA GPU on Linux aarch64"),
        (Facts("windows", "AMD64", nvidia=True), "torch", "cuda", bc.TORCH_CUDA_INDEX, "no GPU support on native"),
        (Facts("windows", "AMD64"), bc.CPU_FASTEST, "cpu", None, "no GPU it can use"),
        (Facts("windows", "ARM64"), bc.CPU_FASTEST, "cpu", None, "the CPU"),
        (Facts("macos", "arm64"), "torch", "mps", None, "Apple GPU (MPS)"),
        (Facts("macos", "x86_64"), bc.CPU_FASTEST, "cpu", None, "the CPU"),
    ],
    ids=["linux-nvidia", "linux-cpu", "linux-arm-nvidia", "win-nvidia", "win-cpu", "win-arm", "mac-arm", "mac-intel"],
)
def test_each_platform_gets_its_backend_and_says_why(facts, backend, device, index, words):
    choice = bc.choose(facts)
    assert (choice.backend, choice.device, choice.index) == (backend, device, index)
    assert words in choice.reason
    assert choice.requirements == bc.REQUIREMENTS[(backend, device)]
    assert choice.requirements[0].split("[")[0].split(">")[0] == ("tensorflow" if backend == "tensorflow" else backend)


def test_cuda_requirements_name_the_cuda_builds():
    assert bc.choose(Facts("linux", "x86_64", True), "tensorflow").requirements == ["tensorflow[and-cuda]>=2.16"]
    assert bc.choose(Facts("linux", "x86_64", True), "jax").requirements == ["jax[cuda12]>=0.4.30"]
    torch_gpu = bc.choose(Facts("linux", "x86_64", True), "torch")
    assert (torch_gpu.device, torch_gpu.index) == ("cuda", None)  # the default index's Linux torch is a CUDA build
    torch_cpu = bc.choose(Facts("linux", "x86_64", False), "torch")
    assert (torch_cpu.device, torch_cpu.index) == ("cpu", bc.TORCH_CPU_INDEX)  # not gigabytes of CUDA for a CPU


def test_override_wins_and_can_force_the_cpu():
    choice = bc.choose(Facts("windows", "AMD64", nvidia=True), "tensorflow")
    assert (choice.backend, choice.device) == ("tensorflow", "cpu") and "--backend tensorflow" in choice.reason
    assert bc.choose(Facts("windows", "AMD64", nvidia=True), "torch:cpu").device == "cpu"
    assert bc.choose(Facts("macos", "arm64"), "jax").device == "cpu"
    assert bc.choose(Facts("linux", "x86_64", nvidia=True), "JAX:GPU").device == "cuda"


@pytest.mark.parametrize(
    "facts, override, words",
    [
        (Facts("linux", "x86_64"), "mxnet", "expected one of tensorflow, torch, jax"),
        (Facts("linux", "x86_64"), "torch:tpu", "optionally with :cpu or :gpu, received 'torch:tpu'"),
        (Facts("linux", "x86_64"), "torch:gpu", "received no NVIDIA GPU"),
        (Facts("macos", "arm64"), "tensorflow:gpu", "only PyTorch uses the Apple GPU"),
        (Facts("windows", "AMD64", nvidia=True), "tensorflow:gpu", "expected a GPU that tensorflow can use"),
        (Facts("freebsd", "amd64"), None, "system: expected linux, windows or macos, received 'freebsd'"),
    ],
)
def test_impossible_requests_are_clear(facts, override, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        bc.choose(facts, override)


def test_the_choice_module_is_stdlib_only_and_agrees_with_the_engine():
    import ast
    import sys

    from nst_keras.backend import selection

    tree = ast.parse(PATH.read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
    assert bc.BACKENDS == selection.BACKENDS
    assert bc.CPU_FASTEST == selection.CPU_PREFERENCE[0]
