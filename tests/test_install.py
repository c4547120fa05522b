"""install/install.py, run as a user runs it (a subprocess) against a temporary home with fake GIMP folder trees.

The engine's virtualenv is made fast and offline with the installer's test hooks: --system-site-packages (the new
virtualenv sees this interpreter's packages, pip and setuptools included, so it needs no pip of its own), --no-deps
and --pip-args "--no-build-isolation --no-index" (pip builds only nst-keras itself from the checkout),
--skip-weights and --skip-doctor (no TensorFlow import). One install takes about 2 s.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from installer_modules import load_installer

REPO = Path(__file__).resolve().parents[1]
INSTALL_PY = REPO / "install" / "install.py"
INSTALL_SH = REPO / "install" / "install.sh"
PLUGIN_SOURCE = REPO / "gimp_plugin" / "nst-keras" / "nst-keras.py"
FAST = [
    "--yes",
    "--system-site-packages",
    "--no-deps",
    "--pip-args",
    "--no-build-isolation --no-index",
    "--skip-weights",
    "--skip-doctor",
    "--nvidia",
    "no",  # the same backend (TensorFlow on the CPU) on a machine with an NVIDIA GPU
]
WEIGHTS_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


# Helpers -------------------------------------------------------------------------------


class Home:
    """A temporary root holding the fake home (and whatever else a test puts beside it)."""

    def __init__(self, root: Path):
        self.root = root
        self.home = root / "home"
        self.bin = root / "fakebin"
        self.home.mkdir()
        self.bin.mkdir()
        self.env = {
            "HOME": str(self.home),
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
        }

    def profile(self, *parts) -> Path:
        path = self.home.joinpath(*parts)
        path.mkdir(parents=True)
        return path

    def fake_command(self, name: str, script: str) -> Path:
        path = self.bin / name
        path.write_text("#!/bin/sh\n" + script)
        path.chmod(0o755)
        return path

    def run(self, *args, env=None, python=None, check=None):
        full_env = dict(self.env)
        full_env.update(env or {})
        proc = subprocess.run(
            [python or sys.executable, str(INSTALL_PY), *args],
            env=full_env,
            cwd=str(self.root),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        if check is not None:
            assert proc.returncode == check, f"exit {proc.returncode}\nSTDOUT:\n{proc.stdout}\nSTDERR:\n{proc.stderr}"
        return proc

    def snapshot(self) -> dict:
        return snapshot(self.root)


def snapshot(root: Path) -> dict:
    """Every path under root: (type, mode, content hash or link target)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def assert_same_tree(before: dict, after: dict):
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), f"added {added[:20]}\nremoved {removed[:20]}\nchanged {changed[:20]}"


def error_lines(proc) -> list:
    return [line for line in proc.stderr.splitlines() if line.startswith("nst-keras installer: error:")]


def check_plugin(plugins: Path, expect_prefix=()) -> dict:
    """The plug-in and its settings in plugins/nst-keras are right; returns the settings."""
    target = plugins / "nst-keras"
    plugin = target / "nst-keras.py"
    assert plugin.read_bytes() == PLUGIN_SOURCE.read_bytes()
    for source in PLUGIN_SOURCE.parent.iterdir():  # the whole plug-in folder
        if source.is_file() and source.name != "protocol.py" and not source.name.endswith((".pyc", "~")):
            assert (target / source.name).read_bytes() == source.read_bytes(), source.name
    protocol = target / "protocol.py"
    assert protocol.read_bytes() == (REPO / "nst_keras" / "protocol.py").read_bytes(), "the engine's protocol module"
    assert stat.S_IMODE(protocol.stat().st_mode) == 0o644
    assert stat.S_IMODE(plugin.stat().st_mode) == 0o755
    settings_path = target / "nst-keras-settings.json"
    assert stat.S_IMODE(settings_path.stat().st_mode) == 0o644
    settings = json.loads(settings_path.read_text())
    assert settings["installed_by"] == "nst-keras installer"
    assert settings["command_prefix"] == list(expect_prefix)
    assert isinstance(settings["env"], dict)
    assert os.path.isabs(settings["python"])
    return settings


def check_python_runs(python: str):
    proc = subprocess.run(
        [python, "-c", "import nst_keras, sys; print(nst_keras.__version__); print(sys.prefix)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    assert proc.returncode == 0, proc.stderr
    version, prefix = proc.stdout.splitlines()
    installer = load_installer()
    assert version == installer.project_version()
    assert Path(python).parent.parent == Path(prefix)


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path)


# The installer file itself ---------------------------------------------------------------


def test_parses_as_python36():
    """Old Pythons must reach the version check (and print it) instead of failing with a SyntaxError."""
    ast.parse(INSTALL_PY.read_text(), feature_version=(3, 6))


def old_pythons() -> list:
    """Real Python 3.6-3.9 interpreters on this machine (PATH or pyenv), one per minor version."""
    candidates = []
    for minor in range(6, 10):
        candidates.append(shutil.which(f"python3.{minor}"))
        candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python3.{minor}")))
    found = {}
    for exe in candidates:
        if not exe or "/shims/" in exe:
            continue
        try:
            proc = subprocess.run([exe, "-c", "import sys; print(sys.version_info[1])"], capture_output=True, timeout=9)
        except (OSError, subprocess.SubprocessError):
            continue
        if proc.returncode == 0:
            found.setdefault(proc.stdout.strip(), exe)
    return sorted(found.values())


@pytest.mark.parametrize("python", old_pythons() or [None])
def test_refuses_old_python(home, python):
    if python is None:
        pytest.skip("no Python 3.6-3.9 on this machine (test_parses_as_python36 still checks the syntax)")
    proc = home.run("--list", python=python)
    assert proc.returncode == 3
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Python 3.10 or newer is required" in lines[0]


def test_install_py_is_only_the_version_gate():
    tree = ast.parse(INSTALL_PY.read_text())
    functions = [node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    assert functions == [] and len(INSTALL_PY.read_text().splitlines()) < 80


def test_installer_and_engine_share_one_weights_facts_module(tmp_path, monkeypatch):
    """The file name, hash, URL and Keras's folder rules come from nst_keras/weights_facts.py on both sides."""
    from nst_keras import weights, weights_facts

    facts = load_installer("weights")
    assert facts.facts.__file__ == weights_facts.__file__
    assert (facts.WEIGHTS_FILENAME, facts.WEIGHTS_MD5, facts.WEIGHTS_URL) == (
        weights.SPECS["vgg19"].filename,
        weights.SPECS["vgg19"].md5,
        weights.SPECS["vgg19"].origin,
    )
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    for keras_home in (tmp_path / "keras-home", tmp_path / "new" / "deeper", blocker / "keras"):
        monkeypatch.setenv("KERAS_HOME", str(keras_home))
        assert facts.weights_cache_path() == weights.cache_path("vgg19"), keras_home
        assert facts.weights_cache_path(str(keras_home)) == weights.cache_path("vgg19")
    # A Keras home that cannot be created: keras.utils.get_file (and so the engine) falls back to /tmp/.keras.
    assert weights.cache_path("vgg19") == os.path.join("/tmp", ".keras", "models", WEIGHTS_NAME)
    monkeypatch.delenv("KERAS_HOME")
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert facts.keras_home() == weights_facts.keras_home() == str(tmp_path / "home" / ".keras")


def test_help_lists_options():
    proc = subprocess.run([sys.executable, str(INSTALL_PY), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for option in ("--gimp-dir", "--venv", "--gpu", "--cpu", "--weights-file", "--flatpak-grant", "--uninstall"):
        assert option in proc.stdout
    assert "--backend" in proc.stdout and "--torch-index" in proc.stdout
    for hook in ("--platform", "--weights-md5", "--machine", "--nvidia"):  # hidden test hooks
        assert hook not in proc.stdout


# Choosing the backend (more in tests/test_install_backend.py) ---------------------------


def test_gpu_choice_in_dry_run(home):
    home.profile(".config", "GIMP", "3.0")
    nvidia = ["--nvidia", "yes", "--machine", "x86_64"]
    proc = home.run("--dry-run", "--yes", "--gpu", *nvidia, check=0)
    assert "tensorflow[and-cuda]" in proc.stdout
    proc = home.run("--dry-run", "--yes", "--cpu", *nvidia, check=0)
    assert "and-cuda" not in proc.stdout and "Backend: --cpu: the CPU, with tensorflow" in proc.stdout
    env = {"APPDATA": str(home.root / "ad")}
    proc = home.run(
        "--dry-run", "--yes", "--gpu", "--platform", "windows", "--nvidia", "yes", "--machine", "AMD64", env=env
    )
    assert "'torch>=2.5'" in proc.stdout and "--torch-index URL" in proc.stdout
    assert "WSL2" not in proc.stdout


# Install, upgrade, uninstall -------------------------------------------------------------


@pytest.mark.slow
def test_linux_install_upgrade_uninstall(home):
    native = home.profile(".config", "GIMP", "3.0")
    old = home.profile(".config", "GIMP", "2.10")
    flatpak = home.profile(".var", "app", "org.gimp.GIMP", "config", "GIMP", "3.0")
    snap = home.profile("snap", "gimp", "current", ".config", "GIMP", "3.0")
    (native / "gimprc").write_text("# the user's own settings\n")
    before = home.snapshot()

    proc = home.run(*FAST, check=0)
    out = proc.stdout
    assert "GIMP 3.0 (native)" in out and "GIMP 3.0 (Flatpak)" in out
    assert "skipped GIMP 2.10 profile" in out
    assert "Snap's strict confinement" in out
    assert "Next: Open GIMP, choose a layer, then Filters > Artistic > Neural Style Transfer..." in out
    settings = check_plugin(native / "plug-ins")
    flat_settings = check_plugin(flatpak / "plug-ins", expect_prefix=["flatpak-spawn", "--host"])
    assert not (old / "plug-ins").exists()
    assert not (snap / "plug-ins").exists()
    venv = home.home / ".local" / "share" / "nst-keras" / "venv"
    assert Path(settings["python"]).parent.parent == venv
    assert flat_settings["python"] == settings["python"]
    check_python_runs(settings["python"])
    manifest = home.home / ".local" / "share" / "nst-keras" / "install-manifest.json"
    assert json.loads(manifest.read_text())["installed_by"] == "nst-keras installer"

    # Second run: upgrades in place (venv reused, plug-in replaced, the user's settings kept).
    pyvenv = (venv / "pyvenv.cfg").stat()
    plugin = native / "plug-ins" / "nst-keras" / "nst-keras.py"
    plugin.write_text("# an old version of the plug-in\n")
    settings_path = native / "plug-ins" / "nst-keras" / "nst-keras-settings.json"
    settings["env"] = {"CUDA_VISIBLE_DEVICES": "1"}
    settings_path.write_text(json.dumps(settings))
    proc = home.run(*FAST, "--env", "NST_KERAS_TEST=1", check=0)
    assert "existing virtualenv" in proc.stdout
    assert (venv / "pyvenv.cfg").stat().st_ino == pyvenv.st_ino
    assert (venv / "pyvenv.cfg").stat().st_mtime_ns == pyvenv.st_mtime_ns
    settings2 = check_plugin(native / "plug-ins")
    assert settings2["env"] == {"CUDA_VISIBLE_DEVICES": "1", "NST_KERAS_TEST": "1"}
    assert settings2["python"] == settings["python"]
    check_python_runs(settings2["python"])

    # A dry-run uninstall changes nothing; the real one restores the tree exactly.
    installed = home.snapshot()
    proc = home.run("--uninstall", "--dry-run", "--yes", check=0)
    assert "[dry-run] would remove the virtualenv" in proc.stdout
    assert_same_tree(installed, home.snapshot())
    proc = home.run("--uninstall", "--yes", check=0)
    assert "Uninstalled." in proc.stdout
    assert_same_tree(before, home.snapshot())
    proc = home.run("--uninstall", "--yes", check=0)
    assert "Nothing to uninstall" in proc.stdout


@pytest.mark.slow
def test_xdg_folders(home):
    config = home.root / "xdg-config"
    data = home.root / "xdg-data"
    (config / "GIMP" / "3.0").mkdir(parents=True)
    home.profile(".config", "GIMP", "3.0")  # ignored: XDG_CONFIG_HOME points elsewhere
    env = {"XDG_CONFIG_HOME": str(config), "XDG_DATA_HOME": str(data)}
    before = home.snapshot()
    home.run(*FAST, env=env, check=0)
    settings = check_plugin(config / "GIMP" / "3.0" / "plug-ins")
    assert Path(settings["python"]).parent.parent == data / "nst-keras" / "venv"
    assert not (home.home / ".config" / "GIMP" / "3.0" / "plug-ins").exists()
    assert not (home.home / ".local").exists()
    home.run("--uninstall", "--yes", env=env, check=0)
    assert_same_tree(before, home.snapshot())


@pytest.mark.slow
def test_macos_layout(home):
    support = home.home / "Library" / "Application Support"
    (support / "GIMP" / "3.0").mkdir(parents=True)
    (support / "GIMP" / "2.10").mkdir(parents=True)
    before = home.snapshot()
    proc = home.run(*FAST, "--platform", "macos", check=0)
    assert "GIMP 3.0 (macOS)" in proc.stdout
    settings = check_plugin(support / "GIMP" / "3.0" / "plug-ins")
    assert Path(settings["python"]).parent.parent == support / "nst-keras" / "venv"
    assert not (support / "GIMP" / "2.10" / "plug-ins").exists()
    check_python_runs(settings["python"])
    home.run("--uninstall", "--yes", "--platform", "macos", check=0)
    assert_same_tree(before, home.snapshot())


@pytest.mark.slow
def test_windows_layout(home):
    appdata = home.root / "Users" / "u" / "AppData" / "Roaming"
    local = home.root / "Users" / "u" / "AppData" / "Local"
    (appdata / "GIMP" / "3.0").mkdir(parents=True)
    (appdata / "GIMP" / "2.10").mkdir(parents=True)
    local.mkdir(parents=True)
    env = {"APPDATA": str(appdata), "LOCALAPPDATA": str(local)}
    before = home.snapshot()
    proc = home.run(*FAST, "--platform", "windows", env=env, check=0)
    assert "GIMP 3.0 (Windows)" in proc.stdout
    settings = check_plugin(appdata / "GIMP" / "3.0" / "plug-ins")
    assert Path(settings["python"]).parent.parent == local / "nst-keras" / "venv"
    assert not (appdata / "GIMP" / "2.10" / "plug-ins").exists()
    check_python_runs(settings["python"])
    home.run("--uninstall", "--yes", "--platform", "windows", env=env, check=0)
    assert_same_tree(before, home.snapshot())


@pytest.mark.slow
def test_snap_needs_force(home):
    snap = home.profile("snap", "gimp", "current", ".config", "GIMP", "3.0")
    proc = home.run(*FAST, "--list")
    assert proc.returncode == 4
    assert "Snap's strict confinement" in proc.stdout
    proc = home.run(*FAST, "--force-snap", check=0)
    check_plugin(snap / "plug-ins")
    assert "--force-snap" in proc.stdout  # the warning that it will most likely not work


@pytest.mark.slow
def test_native_gimp_never_started(home):
    """GIMP 3 on PATH but no profile yet: the installer creates ~/.config/GIMP/3.0/plug-ins, uninstall removes it."""
    home.fake_command("gimp-3.0", 'echo "GNU Image Manipulation Program version 3.0.4"\n')
    home.profile(".config", "GIMP", "2.10")
    before = home.snapshot()
    proc = home.run(*FAST, check=0)
    assert "GIMP not started yet" in proc.stdout
    assert "GIMP 2.10 settings only when that folder does not exist" in proc.stdout
    check_plugin(home.home / ".config" / "GIMP" / "3.0" / "plug-ins")
    home.run("--uninstall", "--yes", check=0)
    assert_same_tree(before, home.snapshot())


FAKE_FLATPAK = r"""
overrides="${FLATPAK_USER_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/flatpak}/overrides"
case "$1 $2" in
  "info org.gimp.GIMP") printf 'GIMP - GNU Image Manipulation Program\n\n  Version: 3.0.4\n'; exit 0 ;;
  "info --show-permissions")
    printf '[Context]\nshared=network;ipc;\n'
    if grep -q talk "$overrides/org.gimp.GIMP" 2>/dev/null; then
      printf '\n[Session Bus Policy]\norg.freedesktop.Flatpak=talk\n'
    fi
    exit 0 ;;
  "override --user")
    mkdir -p "$overrides"
    printf '[Session Bus Policy]\norg.freedesktop.Flatpak=talk\n' > "$overrides/org.gimp.GIMP"
    exit 0 ;;
esac
exit 1
"""


@pytest.mark.slow
def test_flatpak_never_started_and_permission_grant(home):
    home.fake_command("flatpak", FAKE_FLATPAK)
    before = home.snapshot()
    proc = home.run(*FAST, check=0)
    assert "GIMP 3.0 (Flatpak)" in proc.stdout
    assert "flatpak override --user --talk-name=org.freedesktop.Flatpak org.gimp.GIMP" in proc.stdout
    assert "cannot start the engine until you run" in proc.stdout
    profile = home.home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "3.0"
    check_plugin(profile / "plug-ins", expect_prefix=["flatpak-spawn", "--host"])
    override = home.home / ".local" / "share" / "flatpak" / "overrides" / "org.gimp.GIMP"
    assert not override.exists()

    proc = home.run(*FAST, "--flatpak-grant", check=0)
    assert "talk=" not in proc.stdout
    assert "org.freedesktop.Flatpak=talk" in override.read_text()
    proc = home.run(*FAST, check=0)
    assert "talk permission): ok" in proc.stdout

    home.run("--uninstall", "--yes", check=0)
    assert_same_tree(before, home.snapshot())


@pytest.mark.slow
def test_gimp_dir_option(home):
    profile = home.root / "custom" / "3.0"
    plugins = home.root / "other" / "plug-ins"
    old = home.root / "legacy" / "2.10"
    for path in (profile, plugins, old):
        path.mkdir(parents=True)
    home.profile(".config", "GIMP", "3.0")  # not used: --gimp-dir overrides the search
    args = ["--gimp-dir", str(profile), "--gimp-dir", str(plugins), "--gimp-dir", str(old)]
    proc = home.run(*FAST, *args, check=0)
    assert "skipped --gimp-dir" in proc.stdout
    check_plugin(profile / "plug-ins")
    check_plugin(plugins)
    assert not (old / "plug-ins").exists()
    assert not (home.home / ".config" / "GIMP" / "3.0" / "plug-ins").exists()


@pytest.mark.slow
def test_no_gimp_installs_the_engine(home):
    proc = home.run(*FAST)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "no GIMP 3 was found" in proc.stdout
    assert "-m nst_keras CONTENT STYLE -o OUT" in proc.stdout
    venv = home.home / ".local" / "share" / "nst-keras" / "venv"
    check_python_runs(str(venv / "bin" / "python3"))


def test_dry_run_changes_nothing(home):
    home.profile(".config", "GIMP", "3.0")
    home.profile(".var", "app", "org.gimp.GIMP", "config", "GIMP", "3.0")
    weights = home.root / "w.h5"
    weights.write_bytes(b"fake weights")
    md5 = hashlib.md5(b"fake weights").hexdigest()
    before = home.snapshot()
    proc = home.run("--dry-run", "--yes", "--weights-file", str(weights), "--weights-md5", md5, check=0)
    assert_same_tree(before, home.snapshot())
    out = proc.stdout
    assert "[dry-run] would create the virtualenv" in out
    assert "[dry-run] would run:" in out and "pip install --upgrade" in out
    assert "[dry-run] would write the plug-in file" in out
    assert "[dry-run] would copy the weights to" in out
    assert out.strip().splitlines()[-1] == "Dry run finished: nothing was changed."
    assert "Installed nst-keras" not in out, "a dry run installs nothing and must not say it did"


def test_dry_run_without_gimp_ends_with_dry_run_finished(home):
    proc = home.run("--dry-run", "--yes", "--skip-weights")
    assert proc.returncode == 4
    assert proc.stdout.strip().splitlines()[-1] == "Dry run finished: nothing was changed."
    assert "Installed nst-keras" not in proc.stdout and "would not be installed" in proc.stderr + proc.stdout


@pytest.mark.parametrize("value", ["random", "/some/weights.h5"])
def test_weights_from_env_are_not_fetched(home, value):
    home.profile(".config", "GIMP", "3.0")
    proc = home.run("--dry-run", "--yes", "--env", f"NST_KERAS_WEIGHTS={value}", check=0)
    assert "fetching VGG19" not in proc.stdout
    assert f"Weights: {value} (from --env NST_KERAS_WEIGHTS; nothing to fetch)" in proc.stdout


def test_weights_already_cached_are_not_fetched(home):
    home.profile(".config", "GIMP", "3.0")
    cache = home.root / "keras-home" / "models"
    cache.mkdir(parents=True)
    (cache / WEIGHTS_NAME).write_bytes(b"cached weights")
    md5 = hashlib.md5(b"cached weights").hexdigest()
    env = {"KERAS_HOME": str(home.root / "keras-home")}
    proc = home.run("--dry-run", "--yes", "--weights-md5", md5, env=env, check=0)
    assert "fetching VGG19" not in proc.stdout
    assert f"Weights: VGG19 already in the Keras cache ({cache / WEIGHTS_NAME})" in proc.stdout
    proc = home.run("--dry-run", "--yes", "--env", f"KERAS_HOME={home.root / 'keras-home'}", "--weights-md5", md5)
    assert proc.returncode == 0 and "already in the Keras cache" in proc.stdout, "--env KERAS_HOME is where it looks"


def wheel_of_installed(name: str, folder: Path) -> Path:
    """A wheel of a package installed in this interpreter, made from its installed files (no download)."""
    import importlib.metadata
    import zipfile

    dist = importlib.metadata.distribution(name)
    path = folder / f"{name}-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in dist.files:
            text = str(entry)
            if not (text.startswith("..") or "__pycache__" in text or text.endswith(".pyc")):
                archive.write(dist.locate_file(entry), text)
    return path


@pytest.mark.slow
def test_offline_install_from_a_wheelhouse(home):
    """The supported offline route: --wheelhouse DIR, pip with --no-index --find-links DIR and build isolation.

    The wheelhouse holds the build tools (setuptools from ensurepip's bundle, wheel and packaging from their installed
    files); the runtime dependencies come from the parent environment (--system-site-packages) so that the test needs
    no copy of TensorFlow. No index can be reached: PIP_INDEX_URL points at a closed port.
    """
    import ensurepip

    wheels = home.root / "wheelhouse"
    wheels.mkdir()
    bundled = Path(ensurepip.__file__).parent / "_bundled"
    for wheel in bundled.glob("setuptools-*.whl"):
        shutil.copy(wheel, wheels)
    wheel_of_installed("wheel", wheels)
    wheel_of_installed("packaging", wheels)
    home.profile(".config", "GIMP", "3.0")
    env = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_NO_CACHE_DIR": "1"}
    args = ["--yes", "--system-site-packages", "--wheelhouse", str(wheels), "--skip-weights", "--skip-doctor"]
    args += ["--nvidia", "no"]
    proc = home.run(*args, env=env, check=0)
    assert f"--no-index --find-links {wheels}" in proc.stdout
    assert "downloads TensorFlow" not in proc.stdout
    assert "Installed nst-keras" in proc.stdout
    check_python_runs(str(home.home / ".local" / "share" / "nst-keras" / "venv" / "bin" / "python3"))
    home.run("--uninstall", "--yes", check=0)

    empty = home.root / "empty"
    empty.mkdir()
    proc = home.run("--yes", "--system-site-packages", "--wheelhouse", str(empty), "--skip-weights", "--skip-doctor")
    assert proc.returncode == 6, "without the build tools in the wheelhouse pip cannot build: the wheelhouse was used"


def test_wheelhouse_must_be_a_folder(home):
    proc = home.run("--yes", "--wheelhouse", str(home.root / "nope"))
    assert proc.returncode == 2 and "--wheelhouse: expected a folder of wheel files" in proc.stderr


# Weights -------------------------------------------------------------------------------


def test_weights_file_wrong_hash_is_refused(home):
    home.profile(".config", "GIMP", "3.0")
    weights = home.root / WEIGHTS_NAME
    weights.write_bytes(b"not the weights")
    before = home.snapshot()
    proc = home.run(*FAST, "--weights-file", str(weights))
    assert proc.returncode == 1
    lines = error_lines(proc)
    assert len(lines) == 1 and proc.stderr.strip() == lines[0]
    assert "is not Keras's VGG19 weights file" in lines[0]
    assert "253f8cb515780f3b799900260a226db6" in lines[0]
    assert_same_tree(before, home.snapshot())  # refused before doing anything


@pytest.mark.slow
@pytest.mark.parametrize("keras_home", [True, False])
def test_weights_file_lands_in_keras_cache(home, keras_home):
    home.profile(".config", "GIMP", "3.0")
    weights = home.root / "downloaded.h5"
    weights.write_bytes(b"fake weights for the test")
    md5 = hashlib.md5(weights.read_bytes()).hexdigest()
    env = {"KERAS_HOME": str(home.root / "keras-home")} if keras_home else {}
    cache = (home.root / "keras-home" if keras_home else home.home / ".keras") / "models" / WEIGHTS_NAME
    before = home.snapshot()
    home.run(*FAST, "--weights-file", str(weights), "--weights-md5", md5, env=env, check=0)
    assert cache.read_bytes() == weights.read_bytes()
    home.run("--uninstall", "--yes", env=env, check=0)
    assert_same_tree(before, home.snapshot())


# Errors --------------------------------------------------------------------------------


def test_no_permission_data_folder_under_a_file(home):
    home.profile(".config", "GIMP", "3.0")
    blocker = home.root / "not-a-folder"
    blocker.write_text("a regular file")
    before = home.snapshot()
    proc = home.run(*FAST, env={"XDG_DATA_HOME": str(blocker)})
    assert proc.returncode == 5
    lines = error_lines(proc)
    assert len(lines) == 1 and proc.stderr.strip() == lines[0]
    assert "no write permission" in lines[0] and "is a file, not a folder" in lines[0]
    assert_same_tree(before, home.snapshot())


def test_no_permission_plugins_is_a_file(home):
    profile = home.profile(".config", "GIMP", "3.0")
    (profile / "plug-ins").write_text("not a folder")
    before = home.snapshot()
    proc = home.run(*FAST)
    assert proc.returncode == 5
    lines = error_lines(proc)
    assert len(lines) == 1 and "plug-ins is a file, not a folder" in lines[0]
    assert_same_tree(before, home.snapshot())  # checked before anything was made


def test_no_permission_read_only_mount(home):
    """A read-only file system (root ignores permission bits, not read-only mounts)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a read-only tmpfs")
    profile = home.profile(".config", "GIMP", "3.0")
    (profile / "plug-ins").mkdir()
    before = home.snapshot()
    script = (
        f'mount -t tmpfs -o ro tmpfs "{profile / "plug-ins"}" && exec "{sys.executable}" "{INSTALL_PY}" '
        + " ".join(f"'{a}'" for a in FAST)
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "mount:" in proc.stderr and proc.returncode != 5:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1 and "is not writable" in lines[0]
    assert_same_tree(before, home.snapshot())


@pytest.mark.slow
def test_pip_failure_gives_one_line_and_the_tail(home):
    home.profile(".config", "GIMP", "3.0")
    proc = home.run(
        "--yes",
        "--system-site-packages",
        "--no-deps",
        "--pip-args",
        "--no-build-isolation --no-index nst-keras-no-such-requirement==9.9",
        "--skip-weights",
        "--skip-doctor",
    )
    assert proc.returncode == 6
    lines = error_lines(proc)
    assert len(lines) == 1 and "pip could not install nst-keras" in lines[0]
    assert proc.stderr.startswith(lines[0])
    tail = proc.stderr.splitlines()[1:]
    assert 0 < len(tail) <= 20
    assert "nst-keras-no-such-requirement" in "\n".join(tail)
    # the plug-in is not installed when the engine is not
    assert not (home.home / ".config" / "GIMP" / "3.0" / "plug-ins" / "nst-keras").exists()
    # what was made is in the manifest, so --uninstall cleans it up
    home.run("--uninstall", "--yes", check=0)
    assert not (home.home / ".local").exists()


def test_venv_folder_in_the_way(home):
    home.profile(".config", "GIMP", "3.0")
    busy = home.root / "busy"
    busy.mkdir()
    (busy / "data.txt").write_text("the user's files")
    proc = home.run(*FAST, "--venv", str(busy))
    assert proc.returncode == 1
    assert "is not a virtualenv" in error_lines(proc)[0]


def test_list(home):
    home.profile(".config", "GIMP", "3.0")
    before = home.snapshot()
    proc = home.run("--list", check=0)
    assert "GIMP 3.0 (native)" in proc.stdout
    assert_same_tree(before, home.snapshot())


# The shell wrapper ---------------------------------------------------------------------


def test_install_sh_without_python(home):
    for name, version in (("python3", "3.8.10"), ("python3.9", "3.9.2")):
        home.fake_command(
            name,
            f'case "$*" in *version_info*) exit 1 ;; esac\necho "Python {version}"\n',
        )
    proc = subprocess.run(
        ["/bin/sh", str(INSTALL_SH), "--list"],
        env={"HOME": str(home.home), "PATH": str(home.bin)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 3
    assert proc.stderr.strip().startswith("nst-keras installer: error: Python 3.10 or newer was not found")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_install_sh_runs_install_py(home):
    home.profile(".config", "GIMP", "3.0")
    link = home.bin / "python3"
    link.symlink_to(sys.executable)
    proc = subprocess.run(
        ["/bin/sh", str(INSTALL_SH), "--list"],
        env={"HOME": str(home.home), "PATH": f"{home.bin}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "GIMP 3.0 (native)" in proc.stdout
