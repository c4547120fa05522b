"""install/nst_keras_installer/backend.py: the backend the installer installs, pip's command lines, the record.

The platform's facts are made up (the installer's hidden --platform, --machine and --nvidia hooks, or Facts in the
pure functions), so the tests give the same answers on any machine; nothing is downloaded: pip's command lines are
read from --dry-run's output, and the one real install uses --no-deps --no-index from this interpreter's packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from installer_modules import load_installer

REPO = Path(__file__).resolve().parents[1]
INSTALL_PY = REPO / "install" / "install.py"
FAST = ["--yes", "--system-site-packages", "--no-deps", "--pip-args", "--no-build-isolation --no-index"]
FAST += ["--skip-weights", "--skip-doctor"]


backend = load_installer("backend")
bc = load_installer("backend_choice")
Facts = bc.Facts
ENGINE = str(backend.REPO)
DEPS = [spec for spec in backend.engine_requirements() if not spec.startswith("tensorflow")]


@pytest.fixture
def index_url(tmp_path) -> str:
    """What a user passes as --torch-index: here a local folder's address (no index is ever reached)."""
    folder = tmp_path / "torch-wheels"
    folder.mkdir()
    return folder.as_uri()


# The pure part: facts -> choice -> pip commands ------------------------------------------


def test_engine_requirements_match_the_choice_tables():
    """The installer's requirement specs agree with setup.cfg: TensorFlow's, and the torch and jax extras."""
    import configparser

    assert backend.tensorflow_requirement() == bc.REQUIREMENTS[("tensorflow", "cpu")][0]
    cuda = backend.tensorflow_requirement().replace("tensorflow", "tensorflow[and-cuda]", 1)
    assert cuda == bc.REQUIREMENTS[("tensorflow", "cuda")][0]
    extras = configparser.ConfigParser()
    extras.read(REPO / "setup.cfg", encoding="utf-8")
    for name in ("torch", "jax"):
        assert extras.get("options.extras_require", name).split() == bc.REQUIREMENTS[(name, "cpu")]
    assert "keras>=3" in DEPS and not any(backend.is_tensorflow(spec) for spec in DEPS)
    assert not backend.is_tensorflow("tensorflow-metal") and backend.is_tensorflow("tensorflow[and-cuda]>=2.16")


PLATFORMS = [
    # (facts, --backend, expected commands after pip's common options, backend, device)
    (Facts("linux", "x86_64", True), "auto", [[ENGINE, "tensorflow[and-cuda]>=2.16"]], "tensorflow", "cuda"),
    (Facts("linux", "x86_64"), "auto", [[ENGINE]], "tensorflow", "cpu"),
    (Facts("windows", "AMD64", True), "auto", [DEPS + ["torch>=2.5"], ["--no-deps", ENGINE]], "torch", "cpu"),
    (Facts("windows", "AMD64"), "auto", [[ENGINE]], "tensorflow", "cpu"),
    (Facts("macos", "arm64"), "auto", [DEPS + ["torch>=2.5"], ["--no-deps", ENGINE]], "torch", "mps"),
    (Facts("macos", "x86_64"), "auto", [[ENGINE]], "tensorflow", "cpu"),
    (Facts("linux", "x86_64", True), "jax", [DEPS + ["jax[cuda12]>=0.4.30"], ["--no-deps", ENGINE]], "jax", "cuda"),
    (Facts("linux", "x86_64", True), "torch", [DEPS + ["torch>=2.5"], ["--no-deps", ENGINE]], "torch", "cuda"),
    (Facts("linux", "x86_64"), "torch", [DEPS + ["torch>=2.5"], ["--no-deps", ENGINE]], "torch", "cpu"),
    (Facts("linux", "x86_64", True), "tensorflow:cpu", [[ENGINE]], "tensorflow", "cpu"),
    (Facts("macos", "arm64"), "jax", [DEPS + ["jax>=0.4.30"], ["--no-deps", ENGINE]], "jax", "cpu"),
]


@pytest.mark.parametrize(
    "facts, override, commands, name, device",
    PLATFORMS,
    ids=[
        "linux-nvidia",
        "linux-cpu",
        "win-nvidia-no-index",
        "win-cpu",
        "mac-arm",
        "mac-intel",
        "linux-nvidia-jax",
        "linux-nvidia-torch",
        "linux-cpu-torch",
        "linux-nvidia-tf-cpu",
        "mac-arm-jax",
    ],
)
def test_each_platform_gets_its_pip_commands(facts, override, commands, name, device):
    choice = backend.pick(facts, override, "auto")
    plan = backend.plan(choice)
    assert plan.commands == commands
    assert (plan.choice.backend, plan.choice.device) == (name, device)
    assert plan.index_url is None
    assert not any("tensorflow" in arg for cmd in plan.commands for arg in cmd) or name == "tensorflow"


def test_windows_nvidia_without_an_index_installs_the_cpu_wheel_and_says_how_to_get_the_gpu():
    plan = backend.plan(backend.pick(Facts("windows", "AMD64", True)))
    assert plan.choice.device == "cpu" and plan.choice.index == bc.TORCH_CUDA_INDEX
    assert plan.choice.reason.endswith(
        "PyTorch with CUDA (TensorFlow has no GPU support on native Windows); on the CPU for now: no --torch-index"
    )
    (warning,) = plan.warnings
    assert (
        "re-run with --torch-index URL, the CUDA wheel index that PyTorch's website's install selector gives for "
        "your CUDA version" in warning
    )
    assert "Windows wheel runs on the CPU only" in warning


def test_windows_nvidia_with_an_index_takes_torch_from_it_alone(index_url):
    plan = backend.plan(backend.pick(Facts("windows", "AMD64", True)), index_url)
    assert plan.commands == [["--index-url", index_url, "torch>=2.5"], DEPS, ["--no-deps", ENGINE]]
    assert (plan.choice.device, plan.index_url, plan.warnings) == ("cuda", index_url, [])
    assert "; on the CPU" not in plan.choice.reason


def test_linux_cpu_torch_without_an_index_warns_of_the_cuda_build(index_url):
    plan = backend.plan(backend.pick(Facts("linux", "x86_64"), "torch"))
    assert plan.choice.index == bc.TORCH_CPU_INDEX and plan.warnings == []
    (note,) = plan.notes
    assert "a large CUDA build (gigabytes)" in note and "--torch-index URL" in note
    assert backend.download_size(plan) == "PyTorch, a few GB"
    plan = backend.plan(backend.pick(Facts("linux", "x86_64"), "torch"), index_url)
    assert plan.commands[0] == ["--index-url", index_url, "torch>=2.5"] and plan.notes == []
    assert backend.download_size(plan) == "PyTorch, several hundred MB"


def test_torch_index_is_not_used_for_other_backends_nor_offline(index_url):
    plan = backend.plan(backend.pick(Facts("linux", "x86_64")), index_url)
    assert plan.commands == [[ENGINE]] and plan.index_url is None
    assert plan.notes == ["--torch-index is for PyTorch only: TensorFlow comes from pip's usual index"]
    plan = backend.plan(backend.pick(Facts("windows", "AMD64", True)), index_url, offline=True)
    assert plan.index_url is None and "--index-url" not in plan.commands[0]
    assert plan.choice.device == "cuda" and plan.warnings == []  # the wheelhouse may hold the CUDA wheel
    assert any("--torch-index is not used" in note for note in plan.notes)


def test_no_deps_installs_the_engine_alone():
    plan = backend.plan(backend.pick(Facts("macos", "arm64")), no_deps=True)
    assert plan.commands == [["--no-deps", ENGINE]] and plan.installed == []
    assert plan.notes == ["--no-deps: installing nst-keras only, not torch>=2.5 nor any dependency"]
    plan = backend.plan(backend.pick(Facts("linux", "x86_64")), no_deps=True)
    assert plan.commands == [["--no-deps", ENGINE]]


def test_gpu_and_cpu_flags():
    choice = backend.pick(Facts("windows", "AMD64", True), "auto", "cpu")
    assert (choice.backend, choice.device) == (bc.CPU_FASTEST, "cpu") and choice.reason.startswith("--cpu: ")
    choice = backend.pick(Facts("linux", "aarch64", True), "auto", "gpu")  # the rule says CPU; PyTorch has CUDA
    assert (choice.backend, choice.device) == ("torch", "cuda") and choice.reason.startswith("--gpu: torch on CUDA")
    assert backend.pick(Facts("macos", "arm64"), "auto", "gpu").device == "mps"
    assert backend.pick(Facts("linux", "x86_64", True), "torch", "cpu").device == "cpu"
    assert backend.pick(Facts("linux", "x86_64", True), "jax:gpu", "gpu").device == "cuda"


@pytest.mark.parametrize(
    "facts, override, device, words",
    [
        (
            Facts("linux", "x86_64"),
            "mxnet",
            "auto",
            "--backend: expected one of tensorflow, torch, jax, optionally with :cpu or :gpu, received 'mxnet'",
        ),
        (
            Facts("linux", "x86_64"),
            "torch:cpu",
            "gpu",
            "--gpu: expected a --backend without :cpu or :gpu, or with :gpu, received --backend torch:cpu",
        ),
        (
            Facts("macos", "x86_64"),
            "auto",
            "gpu",
            "--gpu: expected a GPU that TensorFlow, PyTorch or JAX can use on macos x86_64, received no NVIDIA GPU",
        ),
        (
            Facts("windows", "AMD64", True),
            "tensorflow:gpu",
            "auto",
            "--backend tensorflow:gpu: expected a GPU that tensorflow can use on windows AMD64, received an NVIDIA GPU",
        ),
    ],
)
def test_impossible_requests_are_usage_errors(facts, override, device, words):
    with pytest.raises(backend.InstallError) as raised:
        backend.pick(facts, override, device)
    assert raised.value.code == 2
    assert str(raised.value).startswith(words)
    assert "\n" not in str(raised.value)


def test_probe_facts_takes_the_hooks_or_this_machine():
    assert backend.probe_facts("windows", "AMD64", True) == Facts("windows", "AMD64", True)
    here = backend.probe_facts("linux")
    import platform

    assert here.machine == platform.machine() and isinstance(here.nvidia, bool)


# The record the engine reads ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["tensorflow", "torch", "jax"])
def test_the_engine_reads_the_record_the_installer_writes(tmp_path, monkeypatch, name):
    """The installer's own write_record, into a made-up engine prefix; the engine's selection picks it for auto."""
    from nst_keras.backend import selection

    pyenv, manifest = load_installer("pyenv"), load_installer("manifest")
    prefix = tmp_path / "venv"
    prefix.mkdir()
    steps = pyenv.PythonEnvSteps()
    steps.venv, steps.version = str(prefix), "9.9"
    steps.act = manifest.Actions(False, manifest.Manifest(str(tmp_path / "install-manifest.json")))
    plan = backend.plan(backend.pick(Facts("linux", "x86_64"), name))
    steps.write_record(plan)

    path = prefix / selection.RECORD_FILE_NAME
    assert backend.record_path(str(prefix)) == selection.record_path(str(prefix)) == str(path)
    assert steps.act.manifest.data["files"] == [str(path)], "listed, so that --uninstall removes it"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (data["backend"], data["device"], data["reason"]) == (name, "cpu", plan.choice.reason)
    assert data["installed"][0] == "nst-keras 9.9" and data["installed_by"] == "nst-keras installer"
    assert oct(path.stat().st_mode & 0o777) == "0o644"

    monkeypatch.delenv("NST_KERAS_BACKEND", raising=False)
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert selection.recorded_backend(str(prefix)) == (name, str(path))
    monkeypatch.setattr(sys, "prefix", str(prefix))  # the engine running in that environment
    assert selection.resolve("auto") == (name, f"recorded by the installer ({path})")


# The installer run as a user runs it -------------------------------------------------------


class Run:
    """install.py in a subprocess against a temporary home with one GIMP 3 profile for `plat`."""

    def __init__(self, root: Path, plat: str = "linux"):
        self.root, self.plat = root, plat
        self.home = root / "home"
        self.env = {"HOME": str(self.home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        if plat == "windows":
            self.env.update(APPDATA=str(root / "Roaming"), LOCALAPPDATA=str(root / "Local"))
            (root / "Roaming" / "GIMP" / "3.0").mkdir(parents=True)
            self.venv = root / "Local" / "nst-keras" / "venv"
        elif plat == "macos":
            (self.home / "Library" / "Application Support" / "GIMP" / "3.0").mkdir(parents=True)
            self.venv = self.home / "Library" / "Application Support" / "nst-keras" / "venv"
        else:
            (self.home / ".config" / "GIMP" / "3.0").mkdir(parents=True)
            self.venv = self.home / ".local" / "share" / "nst-keras" / "venv"

    def __call__(self, *args, env=None):
        full = dict(self.env, **(env or {}))
        argv = [sys.executable, str(INSTALL_PY), "--platform", self.plat, *args]
        return subprocess.run(argv, env=full, cwd=str(self.root), capture_output=True, text=True, timeout=300)

    def tree(self) -> set:
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*")}


def pip_lines(out: str) -> list:
    """The argument lists after `pip install`'s common options, from the dry run's `would run:` lines."""
    import shlex

    common = ["-m", "pip", "install", "--upgrade", "--no-cache-dir", "--progress-bar", "off"]
    found = []
    for line in out.splitlines():
        if "[dry-run] would run:" in line and " -m pip install " in line:
            argv = shlex.split(line.split("would run: ", 1)[1])
            assert argv[1:8] == common, argv
            found.append(argv[8:])
    return found


@pytest.mark.parametrize(
    "plat, facts, override",
    [
        ("linux", ["--machine", "x86_64", "--nvidia", "yes"], "auto"),
        ("linux", ["--machine", "x86_64", "--nvidia", "no"], "auto"),
        ("windows", ["--machine", "AMD64", "--nvidia", "yes"], "auto"),
        ("macos", ["--machine", "arm64"], "auto"),
        ("macos", ["--machine", "x86_64"], "auto"),
        ("linux", ["--machine", "x86_64", "--nvidia", "no"], "jax"),
    ],
    ids=["linux-nvidia", "linux-cpu", "win-nvidia", "mac-arm", "mac-intel", "linux-jax"],
)
def test_dry_run_says_what_it_picked_and_why_and_runs_those_commands(tmp_path, plat, facts, override):
    run = Run(tmp_path, plat)
    before = run.tree()
    proc = run("--dry-run", "--yes", "--skip-weights", "--backend", override, *facts)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert run.tree() == before
    machine = facts[1]
    nvidia = facts[2:] == ["--nvidia", "yes"]
    expected = backend.plan(backend.pick(Facts(plat, machine, nvidia), override))
    lines = proc.stdout.splitlines()
    assert [line for line in lines if line.startswith("Backend: ")] == ["Backend: " + expected.choice.reason]
    assert lines.index("Backend: " + expected.choice.reason) < lines.index("GIMP 3 found:")
    assert pip_lines(proc.stdout) == expected.commands
    record = run.venv / "nst-keras-backend.json"
    assert f"[dry-run] would write the backend record {record}" in proc.stdout
    for warning in expected.warnings:
        assert f"nst-keras installer: warning: {warning}" in proc.stdout


def test_dry_run_takes_the_torch_index_from_the_environment(tmp_path, index_url):
    run = Run(tmp_path, "windows")
    windows_nvidia = ["--dry-run", "--yes", "--skip-weights", "--machine", "AMD64", "--nvidia", "yes"]
    proc = run(*windows_nvidia, env={"NST_KERAS_TORCH_INDEX": index_url})
    assert proc.returncode == 0, proc.stderr
    assert pip_lines(proc.stdout)[0] == ["--index-url", index_url, "torch>=2.5"]
    assert "(PyTorch on CUDA)" in proc.stdout and "--torch-index URL" not in proc.stdout
    proc = run(*windows_nvidia, "--torch-index", index_url + "/flag", env={"NST_KERAS_TORCH_INDEX": index_url})
    assert pip_lines(proc.stdout)[0] == ["--index-url", index_url + "/flag", "torch>=2.5"], "the flag wins"


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["--backend", "mxnet"],
            "--backend: expected one of tensorflow, torch, jax, optionally with :cpu or :gpu, received 'mxnet'",
        ),
        (["--backend", "torch:tpu"], "received 'torch:tpu'"),
        (["--backend", "tensorflow:gpu", "--machine", "arm64"], "only PyTorch uses the Apple GPU"),
        (["--gpu", "--machine", "x86_64"], "--gpu: expected a GPU that TensorFlow, PyTorch or JAX can use on macos"),
    ],
)
def test_a_bad_backend_is_exit_2_and_one_sentence(tmp_path, args, words):
    run = Run(tmp_path, "macos")
    before = run.tree()
    proc = run("--yes", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("nst-keras installer: error: ") and words in line
    assert "expected" in line and "received" in line
    assert run.tree() == before, "refused before anything was made"


def test_an_empty_torch_index_is_a_usage_error(tmp_path):
    proc = Run(tmp_path)("--dry-run", "--torch-index", " ")
    assert proc.returncode == 2
    assert "--torch-index: expected the address of a package index, received an empty value" in proc.stderr


@pytest.mark.slow
def test_install_records_the_backend_reinstall_replaces_it_uninstall_removes_it(tmp_path):
    """A real (offline, --no-deps) install with --backend torch, a re-install with jax, then --uninstall."""
    run = Run(tmp_path)
    before = run.tree()
    proc = run(*FAST, "--backend", "torch", "--nvidia", "no")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = run.venv / "nst-keras-backend.json"
    data = json.loads(record.read_text(encoding="utf-8"))
    assert (data["backend"], data["device"]) == ("torch", "cpu") and data["reason"] == "--backend torch: torch on CPU"
    manifest = json.loads((run.venv.parent / "install-manifest.json").read_text(encoding="utf-8"))
    assert str(record) in manifest["files"]

    # The engine in that virtualenv, with auto, runs on what was recorded.
    code = "from nst_keras.backend import selection; print(*selection.resolve('auto'), sep='|')"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(run.home)}
    python = str(run.venv / "bin" / "python3")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"torch|recorded by the installer ({record})"

    proc = run(*FAST, "--backend", "jax", "--nvidia", "no")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "existing virtualenv" in proc.stdout
    assert json.loads(record.read_text(encoding="utf-8"))["backend"] == "jax"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=60)
    assert out.stdout.strip() == f"jax|recorded by the installer ({record})"

    proc = run("--uninstall", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"file    {record}" in proc.stdout
    assert run.tree() == before


@pytest.mark.slow
def test_uninstall_removes_the_record_from_a_virtualenv_it_did_not_make(tmp_path):
    run = Run(tmp_path)
    venv = tmp_path / "own-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    import site
    import sysconfig

    purelib = sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"]
    Path(purelib, "parent.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # this one's pip, setuptools
    before = run.tree()
    proc = run(*FAST, "--venv", str(venv), "--backend", "jax", "--nvidia", "no")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = venv / "nst-keras-backend.json"
    assert json.loads(record.read_text(encoding="utf-8"))["backend"] == "jax"
    proc = run("--uninstall", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not record.exists() and (venv / "pyvenv.cfg").is_file(), "the record goes, the user's virtualenv stays"
    left = run.tree() - before
    assert all("own-venv" in path for path in left), sorted(left)[:10]
    assert os.path.isdir(venv)
