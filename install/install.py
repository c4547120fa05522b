#!/usr/bin/env python3
"""Install nst-keras: the engine in its own virtualenv, the GIMP 3 plug-in, and the VGG19 weights.

    python3 install/install.py            # install or upgrade, into every GIMP 3 found
    python3 install/install.py --dry-run  # print every action, change nothing
    python3 install/install.py --uninstall

Steps: find GIMP 3 (native, Flatpak, Snap, macOS, Windows) and its user plug-in folder; make the
engine's virtualenv in the user data folder and pip-install this repository into it (TensorFlow
for the CPU, or with CUDA on Linux x86_64 when an NVIDIA GPU is found); copy the plug-in and write
its settings file (which Python to start); fetch the weights; run `python -m nst_keras doctor`.
Everything it creates is listed in a manifest in the data folder, which --uninstall reads to
remove exactly that and nothing else.

Offline (no internet on this machine): pass --wheelhouse DIR, a folder of wheel files made on a machine with
internet (same OS and Python version) with
    python3 -m pip download -d DIR setuptools wheel "tensorflow>=2.16" keras numpy "pillow>=10" scipy
and --weights-file FILE with the VGG19 file downloaded there too; pip then reads DIR only (--no-index --find-links).

Exit codes: 0 installed (also with a warning when the weights could not be fetched), 1 error,
2 usage error, 3 Python too old, 4 engine installed but no GIMP 3 found, 5 no write permission,
6 pip failed.

Standard library only. This file must stay parseable by Python 3.6 so that old Pythons print the
refusal below instead of a SyntaxError: no walrus, no positional-only parameters, no match, no
parenthesized context managers, no `from __future__ import annotations`, no f-string `=`.
"""

import argparse
import configparser
import errno
import glob
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import deque

PROG = "nst-keras installer"
MIN_PYTHON = (3, 10)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PYTHON = 3
EXIT_NO_GIMP = 4
EXIT_PERMISSION = 5
EXIT_PIP = 6

if sys.version_info < MIN_PYTHON:
    sys.stderr.write(
        f"{PROG}: error: Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer is required, "
        f"this is Python {platform.python_version()} ({sys.executable}); "
        "install a newer Python and run this script with it (or use install/install.sh or install.ps1).\n"
    )
    sys.exit(EXIT_PYTHON)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PLUGIN_NAME = "nst-keras"
PLUGIN_SOURCE_DIR = os.path.join(REPO, "gimp_plugin", PLUGIN_NAME)
SETTINGS_NAME = "nst-keras-settings.json"
MANIFEST_NAME = "install-manifest.json"
INSTALLED_BY = "nst-keras installer"
FLATPAK_ID = "org.gimp.GIMP"
FLATPAK_TALK = "org.freedesktop.Flatpak"
FLATPAK_PREFIX = ["flatpak-spawn", "--host"]
GRANT_COMMAND = ["flatpak", "override", "--user", "--talk-name=" + FLATPAK_TALK, FLATPAK_ID]
NEXT_STEP = "Open GIMP, choose a layer, then Filters > Artistic > Neural Style Transfer..."

# Keras's ImageNet VGG19 file without the classifier (what nst_keras.weights downloads).
WEIGHTS_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_MD5 = "253f8cb515780f3b799900260a226db6"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + WEIGHTS_FILENAME

# What fetches the weights: nst_keras.weights.resolve_weights, with its one-line message on failure.
FETCH_CODE = "from nst_keras.weights import resolve_weights; print(resolve_weights('vgg19'))"
FETCH_SCRIPT = (
    "import sys\n"
    "from nst_keras.weights import resolve_weights\n"
    "try:\n"
    "    print(resolve_weights('vgg19'))\n"
    "except ValueError as error:\n"
    "    sys.exit(str(error))\n"
)

PIP_TAIL_LINES = 20
# pip lines shown while it works (the rest is kept for the error report; --verbose shows all).
PIP_SHOWN = ("Collecting", "Downloading", "Installing", "Successfully")
# What the copy of the checkout that pip builds leaves out: these top-level entries, and byte code anywhere.
SOURCE_SKIP_TOP = {".git", ".venv", "venv", "build", "dist", ".pytest_cache", ".ruff_cache", "out", "test-output"}
SOURCE_SKIP_TOP |= {"tests", "bench", "samples"}


class InstallError(Exception):
    """A failure with one clear line for the user, an exit code, and optional detail lines (pip's tail)."""

    def __init__(self, message, code=EXIT_ERROR, detail=None):
        Exception.__init__(self, message)
        self.code = code
        self.detail = detail or []


# Output ---------------------------------------------------------------------------------


def say(text=""):
    print(text, flush=True)


def warn(text):
    print(f"{PROG}: warning: {text}", flush=True)


def ask(question, default, args):
    """Ask a yes/no question on a terminal; without one (or with --yes) take the default."""
    if args.yes or args.dry_run or not sys.stdin.isatty():
        return default
    hint = "[Y/n]" if default else "[y/N]"
    try:
        answer = input(f"{question} {hint} ").strip().lower()
    except EOFError:
        return default
    if not answer:
        return default
    return answer in ("y", "yes")


# Platform and folders -------------------------------------------------------------------


def detect_platform():
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def home():
    return os.path.expanduser("~")


def env_dir(name, default):
    """An absolute folder from the environment variable `name`, else `default` (XDG rules: relative is ignored)."""
    value = os.environ.get(name, "")
    return value if os.path.isabs(value) else default


def data_dir(plat):
    """The per-user data folder for nst-keras (the venv and the manifest live here)."""
    if plat == "windows":
        return os.path.join(env_dir("LOCALAPPDATA", os.path.join(home(), "AppData", "Local")), "nst-keras")
    if plat == "macos":
        return os.path.join(home(), "Library", "Application Support", "nst-keras")
    return os.path.join(env_dir("XDG_DATA_HOME", os.path.join(home(), ".local", "share")), "nst-keras")


def keras_home():
    """Keras's base folder, as keras (and nst_keras.weights) compute it."""
    value = os.environ.get("KERAS_HOME")
    if value:
        return os.path.abspath(os.path.expanduser(value))
    base = home()
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return os.path.join(base, ".keras")


def weights_cache_path(keras_home_value=None):
    """Where the VGG19 file goes in the Keras cache (of KERAS_HOME=`keras_home_value` when given)."""
    base = os.path.abspath(os.path.expanduser(keras_home_value)) if keras_home_value else keras_home()
    return os.path.join(base, "models", WEIGHTS_FILENAME)


def venv_python(venv):
    """The virtualenv's interpreter: an existing one, else where this Python's venv module will put it."""
    candidates = [
        os.path.join(venv, "bin", "python3"),
        os.path.join(venv, "bin", "python"),
        os.path.join(venv, "Scripts", "python.exe"),
    ]
    for path in candidates:
        if os.path.isfile(path):
            return path
    if os.name == "nt":
        return candidates[2]
    return candidates[0]


def flatpak_user_dir():
    value = os.environ.get("FLATPAK_USER_DIR")
    if value:
        return value
    return os.path.join(env_dir("XDG_DATA_HOME", os.path.join(home(), ".local", "share")), "flatpak")


def flatpak_override_file():
    return os.path.join(flatpak_user_dir(), "overrides", FLATPAK_ID)


# Finding GIMP ---------------------------------------------------------------------------

VERSION_DIR = re.compile(r"^(\d+)\.(\d+)$")
KIND_LABELS = {
    "native": "native",
    "flatpak": "Flatpak",
    "snap": "Snap",
    "macos": "macOS",
    "windows": "Windows",
    "custom": "--gimp-dir",
}


class Gimp:
    """One GIMP 3 user profile: where its plug-ins go and how the plug-in must start the engine."""

    def __init__(self, kind, version, profile, plugins=None, origin="profile"):
        self.kind = kind
        self.version = version
        self.profile = profile
        self.plugins = plugins or os.path.join(profile, "plug-ins")
        self.origin = origin  # profile: found on disk; new: GIMP installed but never started; option: --gimp-dir

    @property
    def label(self):
        return f"GIMP {self.version} ({KIND_LABELS.get(self.kind, self.kind)})"

    @property
    def target(self):
        return os.path.join(self.plugins, PLUGIN_NAME)

    def describe(self):
        text = f"{self.label:<22} plug-ins: {self.plugins}"
        if self.origin == "new":
            text += "  (GIMP not started yet: the folder will be created)"
        elif self.origin == "option" and not os.path.isdir(self.plugins):
            text += "  (does not exist yet: it will be created)"
        return text


def scan_profiles(kind, base, notes):
    """GIMP 3 profiles in `base` (a folder holding 2.10/, 3.0/, ...); older ones are noted and skipped."""
    found = []
    if not os.path.isdir(base):
        return found
    for name in sorted(os.listdir(base)):
        path = os.path.join(base, name)
        match = VERSION_DIR.match(name)
        if not match or not os.path.isdir(path):
            continue
        major = int(match.group(1))
        if major < 3:
            notes.append(f"skipped GIMP {name} profile {path}: the plug-in needs GIMP 3")
        elif major == 3:
            found.append(Gimp(kind, name, path))
    return found


def run_quiet(argv, timeout=10):
    """(exit code, stdout + stderr) of a small probe command; (None, '') when it cannot run."""
    try:
        proc = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            text=True,
            errors="replace",
        )
    except (OSError, subprocess.SubprocessError):
        return None, ""
    return proc.returncode, proc.stdout or ""


def parse_version(text):
    """'3.0' from text such as 'GNU Image Manipulation Program version 3.0.4' or 'Version: 3.0.4'."""
    match = re.search(r"(?:version|Version:)\s*(\d+)\.(\d+)", text)
    if not match:
        return None
    return f"{match.group(1)}.{match.group(2)}"


def gimp_on_path(notes):
    """The version ('3.0') of a native GIMP 3 on PATH, or None."""
    names = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder:
            names.extend(os.path.basename(p) for p in glob.glob(os.path.join(folder, "gimp-3*")))
    names = sorted(set(n for n in names if re.match(r"^gimp-3(\.\d+)?$", n)), reverse=True)
    for name in names + ["gimp"]:
        exe = shutil.which(name)
        if not exe:
            continue
        code, out = run_quiet([exe, "--version"])
        version = parse_version(out) if code == 0 else None
        if version is None:
            match = re.match(r"^gimp-(3)\.(\d+)$", name)
            version = f"{match.group(1)}.{match.group(2)}" if match else ("3.0" if name == "gimp-3" else None)
        if version and version.startswith("3."):
            return version
        if version:
            notes.append(f"skipped {exe} (GIMP {version}): the plug-in needs GIMP 3")
    return None


def flatpak_gimp_version(notes):
    """The version of an installed Flatpak GIMP ('3.0'), or None when there is none (or flatpak is missing)."""
    if not shutil.which("flatpak"):
        return None
    code, out = run_quiet(["flatpak", "info", FLATPAK_ID])
    if code != 0:
        return None
    version = parse_version(out) or "3.0"
    if not version.startswith("3."):
        notes.append(f"skipped the Flatpak GIMP {version}: the plug-in needs GIMP 3")
        return None
    return version


def macos_app_version():
    """The version of a GIMP 3 app bundle in /Applications or ~/Applications, or None."""
    import plistlib

    for folder in ("/Applications", os.path.join(home(), "Applications")):
        for app in sorted(glob.glob(os.path.join(folder, "GIMP*.app"))):
            try:
                with open(os.path.join(app, "Contents", "Info.plist"), "rb") as fh:
                    info = plistlib.load(fh)
            except (OSError, ValueError):
                continue
            version = parse_version("version " + str(info.get("CFBundleShortVersionString", "")))
            if version and version.startswith("3."):
                return version
    return None


def windows_install_version():
    """The version of an installed GIMP 3 for Windows (bin/gimp-3*.exe under Program Files), or None."""
    roots = [os.environ.get(name, "") for name in ("ProgramFiles", "ProgramW6432", "ProgramFiles(x86)")]
    roots.append(os.path.join(env_dir("LOCALAPPDATA", os.path.join(home(), "AppData", "Local")), "Programs"))
    for root in roots:
        if not root:
            continue
        for exe in sorted(glob.glob(os.path.join(root, "GIMP 3*", "bin", "gimp-3*.exe"))):
            match = re.search(r"gimp-(\d+)\.(\d+)\.exe$", exe, re.IGNORECASE)
            return f"{match.group(1)}.{match.group(2)}" if match else "3.0"
    return None


def find_gimps(plat, notes):
    """Every GIMP 3 user profile on this machine (see the module docstring for the layouts)."""
    found = []
    if plat == "linux":
        config = env_dir("XDG_CONFIG_HOME", os.path.join(home(), ".config"))
        native = scan_profiles("native", os.path.join(config, "GIMP"), notes)
        if not native:
            version = gimp_on_path(notes)
            if version:
                native = [Gimp("native", version, os.path.join(config, "GIMP", version), origin="new")]
        found += native
        flatpak_base = os.path.join(home(), ".var", "app", FLATPAK_ID, "config", "GIMP")
        flatpak = scan_profiles("flatpak", flatpak_base, notes)
        if not flatpak:
            version = flatpak_gimp_version(notes)
            if version:
                flatpak = [Gimp("flatpak", version, os.path.join(flatpak_base, version), origin="new")]
        found += flatpak
        found += scan_profiles("snap", os.path.join(home(), "snap", "gimp", "current", ".config", "GIMP"), notes)
    elif plat == "macos":
        base = os.path.join(home(), "Library", "Application Support", "GIMP")
        found = scan_profiles("macos", base, notes)
        if not found:
            version = macos_app_version()
            if version:
                found = [Gimp("macos", version, os.path.join(base, version), origin="new")]
    else:
        base = os.path.join(env_dir("APPDATA", os.path.join(home(), "AppData", "Roaming")), "GIMP")
        found = scan_profiles("windows", base, notes)
        if not found:
            version = windows_install_version()
            if version:
                found = [Gimp("windows", version, os.path.join(base, version), origin="new")]
    return found


def gimp_from_option(path, notes):
    """A Gimp for --gimp-dir DIR: DIR is a GIMP profile folder or its plug-ins folder."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.basename(path) == "plug-ins":
        profile, plugins = os.path.dirname(path), path
    else:
        profile, plugins = path, os.path.join(path, "plug-ins")
    name = os.path.basename(profile)
    match = VERSION_DIR.match(name)
    if match and int(match.group(1)) < 3:
        notes.append(f"skipped --gimp-dir {path}: a GIMP {name} profile (the plug-in needs GIMP 3)")
        return None
    normalized = profile.replace("\\", "/")
    if f"/.var/app/{FLATPAK_ID}/" in normalized + "/":
        kind = "flatpak"
    elif "/snap/gimp/" in normalized:
        kind = "snap"
    else:
        kind = "custom"
    return Gimp(kind, name if match else "3", profile, plugins, origin="option")


# TensorFlow build -----------------------------------------------------------------------


def nvidia_gpu_present():
    """True when an NVIDIA GPU and driver are visible, probed without TensorFlow."""
    if shutil.which("nvidia-smi"):
        code, out = run_quiet(["nvidia-smi", "-L"])
        if code == 0 and "GPU" in out:
            return True
    gpus = "/proc/driver/nvidia/gpus"
    if os.path.isdir(gpus) and os.listdir(gpus):
        return True
    return os.path.exists("/dev/nvidia0")


def tensorflow_requirement():
    """The TensorFlow requirement of setup.cfg, e.g. 'tensorflow>=2.16'."""
    parser = configparser.ConfigParser()
    try:
        parser.read(os.path.join(REPO, "setup.cfg"), encoding="utf-8")
        lines = parser.get("options", "install_requires").splitlines()
    except (configparser.Error, OSError):
        lines = []
    for line in lines:
        line = line.strip()
        if re.match(r"^tensorflow\s*([<>=!~;]|$)", line):
            return line
    return "tensorflow"


def choose_tensorflow(plat, machine, want, nvidia):
    """(extra pip requirements, device label, notes) for `want` in auto/gpu/cpu."""
    machine = machine.lower()
    spec = tensorflow_requirement()
    notes = []
    if plat == "linux":
        if want == "cpu":
            return [], "CPU", notes
        if want == "gpu" or (nvidia and machine in ("x86_64", "amd64")):
            if machine not in ("x86_64", "amd64"):
                notes.append(
                    f"TensorFlow's CUDA wheels are made for Linux x86_64 first; on {machine} pip may not find them"
                )
            if want == "gpu" and not nvidia:
                notes.append("--gpu: no NVIDIA GPU was found (nvidia-smi, /proc/driver/nvidia); installing CUDA anyway")
            return [spec.replace("tensorflow", "tensorflow[and-cuda]", 1)], "NVIDIA GPU (CUDA)", notes
        return [], "CPU", notes
    if plat == "macos":
        if want == "gpu":
            if machine == "arm64":
                notes.append(
                    "--gpu: installing tensorflow-metal, Apple's experimental GPU plug-in for TensorFlow; "
                    "if the engine fails or gives wrong results, run the installer again with --cpu"
                )
                return ["tensorflow-metal"], "Apple GPU (tensorflow-metal, experimental)", notes
            notes.append("--gpu: TensorFlow has no GPU support on Intel Macs; the engine runs on the CPU")
        return [], "CPU", notes
    if want == "gpu" or (want == "auto" and nvidia):
        notes.append(
            "TensorFlow 2.11 and newer has no GPU support on native Windows: the engine runs on the CPU. "
            "To use an NVIDIA GPU, run GIMP and this installer inside WSL2 (Linux)"
        )
    return [], "CPU", notes


# Manifest -------------------------------------------------------------------------------


class Manifest:
    """What the installer created, so that --uninstall removes exactly that. Kept in the data folder."""

    def __init__(self, path):
        self.path = path
        self.data = {"format": 1, "installed_by": INSTALLED_BY, "venvs": [], "files": [], "dirs": []}
        self.data["flatpak_override"] = None
        self.loaded = False
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError) as error:
                raise InstallError(f"cannot read the installer's manifest {path}: {error}") from None
            if not isinstance(data, dict) or data.get("installed_by") != INSTALLED_BY:
                raise InstallError(f"{path} is not an nst-keras installer manifest; move it away")
            for key in ("venvs", "files", "dirs"):
                if not isinstance(data.get(key), list):
                    data[key] = []
            self.data.update(data)
            self.loaded = True

    def add(self, key, item):
        if item not in self.data[key]:
            self.data[key].append(item)

    def add_venv(self, path, created):
        for entry in self.data["venvs"]:
            if entry.get("path") == path:
                entry["created"] = bool(entry.get("created") or created)
                return
        self.data["venvs"].append({"path": path, "created": bool(created)})

    def venv_created(self, path):
        return any(e.get("path") == path and e.get("created") for e in self.data["venvs"])


# Actions (all changes go through here, so --dry-run can print them instead) ------------


class Actions:
    def __init__(self, dry_run, manifest):
        self.dry_run = dry_run
        self.manifest = manifest

    def note(self, text):
        say(("  [dry-run] would " if self.dry_run else "  ") + text)

    def makedirs(self, path):
        """Create `path` and its missing parents, recording each one created in the manifest."""
        path = os.path.abspath(path)
        missing = []
        probe = path
        while not os.path.isdir(probe):
            missing.append(probe)
            parent = os.path.dirname(probe)
            if parent == probe:
                break
            probe = parent
        if not missing:
            return
        self.note(f"create folder {path}")
        if self.dry_run:
            return
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
            except FileExistsError:
                continue
            except OSError as error:
                raise InstallError(f"cannot create folder {folder}: {error.strerror}", EXIT_PERMISSION) from None
            self.manifest.add("dirs", folder)

    def write_file(self, path, data, mode, what):
        """Write bytes atomically (a temporary file, then rename) with `mode`; record it in the manifest."""
        self.note(f"write {what} {path}")
        if self.dry_run:
            return
        self.manifest.add("files", path)
        tmp = path + ".tmp-install"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except OSError as error:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise InstallError(f"cannot write {path}: {error.strerror}", EXIT_PERMISSION) from None

    def save_manifest(self):
        if self.dry_run:
            return
        self.makedirs(os.path.dirname(self.manifest.path))
        data = json.dumps(self.manifest.data, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        tmp = self.manifest.path + ".tmp-install"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, self.manifest.path)


# Write permission -----------------------------------------------------------------------


def write_problem(path):
    """Why `path` (a file or folder to create or replace) cannot be written, or None when it can."""
    path = os.path.abspath(path)
    if os.path.lexists(path):
        if os.path.isdir(path):
            ok = os.access(path, os.W_OK | os.X_OK)
            return None if ok else f"{path} is not writable"
        parent = os.path.dirname(path)
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"{parent} is not writable"
        return None
    probe = os.path.dirname(path)
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return f"no existing folder above {path}"
        probe = parent
    if not os.path.isdir(probe):
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def check_writable(targets):
    """targets: (path, what, how to fix) tuples. Raises InstallError(EXIT_PERMISSION) for the first problem."""
    for path, what, fix in targets:
        problem = write_problem(path)
        if problem:
            raise InstallError(f"no write permission for {what} {path}: {problem}. {fix}", EXIT_PERMISSION)


def needs_dir(path):
    """A path that must become a folder: fail when a file is in the way."""
    if os.path.lexists(path) and not os.path.isdir(path):
        return f"{path} is a file, not a folder"
    return None


# Subprocesses ---------------------------------------------------------------------------


def clean_env(extra=None):
    """The environment for the engine's Python: no PYTHONPATH/PYTHONHOME from the caller."""
    env = dict(os.environ)
    for key in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__"):
        env.pop(key, None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if extra:
        env.update(extra)
    return env


def stream(argv, cwd, show, verbose, env=None):
    """Run argv, printing the lines `show` accepts (all with verbose); return (exit code, last lines)."""
    tail = deque(maxlen=PIP_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env or clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as error:
        return None, [f"cannot run {argv[0]}: {error.strerror}"]
    try:
        for line in proc.stdout:
            line = line.rstrip()
            if not line:
                continue
            tail.append(line)
            if verbose or show(line):
                say("    " + line.strip())
    finally:
        proc.stdout.close()
        code = proc.wait()
    return code, list(tail)


def capture(argv, cwd, env=None, timeout=None):
    """(exit code, stdout, stderr) of argv; exit code None when it cannot start."""
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=env or clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {timeout} s"
    except OSError as error:
        return None, "", f"cannot run {argv[0]}: {error.strerror}"
    return proc.returncode, proc.stdout, proc.stderr


def last_line(text):
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def project_version():
    try:
        with open(os.path.join(REPO, "nst_keras", "__init__.py"), encoding="utf-8") as fh:
            match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", fh.read(), re.M)
    except OSError:
        match = None
    return match.group(1) if match else "unknown"


def source_ignore(folder, names):
    """shutil.copytree's filter for the checkout: see SOURCE_SKIP_TOP."""
    skip = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".egg-info"))}
    if os.path.abspath(folder) == os.path.abspath(REPO):
        skip |= SOURCE_SKIP_TOP & set(names)
    return skip


def md5_of(path):
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Installing -----------------------------------------------------------------------------


class Installer:
    def __init__(self, args, plat):
        self.args = args
        self.plat = plat
        self.data = data_dir(plat)
        self.venv = os.path.abspath(os.path.expanduser(args.venv)) if args.venv else os.path.join(self.data, "venv")
        self.manifest = Manifest(os.path.join(self.data, MANIFEST_NAME))
        self.act = Actions(args.dry_run, self.manifest)
        self.version = project_version()
        self.warnings = []

    # -- step 1: GIMP --------------------------------------------------------------------

    def gimps(self, choose=True):
        notes = []
        if self.args.gimp_dir:
            found = [g for g in (gimp_from_option(p, notes) for p in self.args.gimp_dir) if g]
        else:
            found = find_gimps(self.plat, notes)
        chosen = []
        for gimp in found:
            if gimp.kind == "snap" and not self.args.force_snap:
                notes.append(
                    f"skipped {gimp.label} at {gimp.profile}: Snap's strict confinement does not let GIMP's plug-ins "
                    "start a program outside the snap, such as the engine's Python. Use GIMP from your "
                    "distribution or from Flathub, or pass --force-snap to copy the files anyway"
                )
                continue
            chosen.append(gimp)
        say("GIMP 3 found:" if chosen else "GIMP 3 found: none")
        for i, gimp in enumerate(chosen, 1):
            say(f"  {i}. {gimp.describe()}")
        for note in notes:
            say("  note: " + note)
        if (
            choose
            and len(chosen) > 1
            and not self.args.gimp_dir
            and not ask("Install the plug-in into all of them?", True, self.args)
        ):
            picked = []
            for gimp in chosen:
                if ask(f"Install into {gimp.label} ({gimp.plugins})?", True, self.args):
                    picked.append(gimp)
            chosen = picked
        return chosen

    # -- preflight -----------------------------------------------------------------------

    def preflight(self, gimps):
        if not os.path.isfile(os.path.join(REPO, "setup.cfg")) or not os.path.isdir(os.path.join(REPO, "nst_keras")):
            raise InstallError(
                f"{REPO} is not an nst-keras source folder (no setup.cfg or nst_keras/); run the "
                "install.py of a complete checkout"
            )
        if gimps and not os.path.isfile(os.path.join(PLUGIN_SOURCE_DIR, PLUGIN_NAME + ".py")):
            raise InstallError(
                "the plug-in {} is missing; run the install.py of a complete checkout".format(
                    os.path.join(PLUGIN_SOURCE_DIR, PLUGIN_NAME + ".py")
                )
            )
        self.weights_file = None
        if self.args.weights_file:
            self.weights_file = self.check_weights_file(self.args.weights_file)

        fix_venv = "Choose another folder with --venv DIR, or fix the permissions."
        targets = [(self.data, "the data folder", "Set XDG_DATA_HOME / LOCALAPPDATA, or fix the permissions.")]
        targets.append((self.venv, "the engine's virtualenv", fix_venv))
        if os.path.isdir(self.venv):
            for sub in ("bin", "lib", "Scripts", "Lib"):
                if os.path.isdir(os.path.join(self.venv, sub)):
                    targets.append((os.path.join(self.venv, sub), "the engine's virtualenv", fix_venv))
        for gimp in gimps:
            fix = "Choose another GIMP folder with --gimp-dir DIR, or fix the permissions."
            for path in (gimp.plugins, gimp.target):
                problem = needs_dir(path)
                if problem:
                    raise InstallError(
                        f"no write permission for {gimp.label}'s plug-ins: {problem}. {fix}", EXIT_PERMISSION
                    )
            targets.append((gimp.target, gimp.label + "'s plug-in folder", fix))
            for name in self.plugin_files():
                targets.append((os.path.join(gimp.target, name), gimp.label + "'s plug-in", fix))
            targets.append((os.path.join(gimp.target, SETTINGS_NAME), gimp.label + "'s plug-in settings", fix))
        if self.weights_file:
            targets.append((weights_cache_path(), "the Keras weights cache", "Set KERAS_HOME to a writable folder."))
        check_writable(targets)

        venv_exists = os.path.isfile(os.path.join(self.venv, "pyvenv.cfg"))
        if os.path.exists(self.venv) and not venv_exists:
            if not os.path.isdir(self.venv) or os.listdir(self.venv):
                raise InstallError(
                    f"{self.venv} exists and is not a virtualenv; choose another folder with --venv DIR, or remove it"
                )
        if not venv_exists:
            import importlib.util

            if importlib.util.find_spec("venv") is None or importlib.util.find_spec("ensurepip") is None:
                raise InstallError(
                    f"this Python ({sys.executable}) cannot create virtualenvs (its venv/ensurepip modules are "
                    "missing); on Debian or Ubuntu run: sudo apt install python3-venv"
                )

    def check_weights_file(self, path):
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(path):
            raise InstallError(
                f"weights file {path} not found (--weights-file): expected {WEIGHTS_FILENAME} "
                f"(md5 {self.expected_md5()})"
            )
        try:
            digest = md5_of(path)
        except OSError as error:
            raise InstallError(f"cannot read weights file {path}: {error.strerror}") from None
        if digest != self.expected_md5():
            raise InstallError(
                f"{path} is not Keras's VGG19 weights file: its md5 is {digest}, expected {self.expected_md5()} "
                f"({WEIGHTS_FILENAME}, from {WEIGHTS_URL})"
            )
        return path

    def expected_md5(self):
        return (self.args.weights_md5 or WEIGHTS_MD5).lower()

    # -- step 2: the engine --------------------------------------------------------------

    def install_engine(self):
        args = self.args
        python = venv_python(self.venv)
        extra, device, notes = choose_tensorflow(self.plat, platform.machine(), args.device, nvidia_gpu_present())
        for note in notes:
            say("  note: " + note)
        say(f"Engine: virtualenv {self.venv} (TensorFlow for: {device})")
        self.act.makedirs(os.path.dirname(self.venv))
        fresh = not os.path.isfile(os.path.join(self.venv, "pyvenv.cfg"))
        if not fresh and not args.dry_run:
            code, _, _ = capture([python, "-c", "pass"], cwd=self.venv, timeout=60)
            if code != 0:
                if not self.manifest.venv_created(self.venv):
                    raise InstallError(
                        f"the virtualenv {self.venv} is broken (its Python does not start) and was not made by "
                        "this installer; remove it or choose another --venv"
                    )
                say("  the virtualenv's Python does not start any more (was its base Python removed?): recreating it")
                shutil.rmtree(self.venv)
                fresh = True
        if fresh:
            self.create_venv()
        else:
            self.act.note("upgrade nst-keras in the existing virtualenv (pip install --upgrade)")
            self.manifest.add_venv(self.venv, False)
        self.act.save_manifest()
        python = venv_python(self.venv)
        self.pip_install(python, extra)
        return python

    def create_venv(self):
        args = self.args
        argv = [sys.executable, "-m", "venv"]
        if args.system_site_packages:
            argv += ["--system-site-packages", "--without-pip"]
        argv.append(self.venv)
        self.act.note("create the virtualenv: " + " ".join(shlex.quote(a) for a in argv))
        if args.dry_run:
            self.manifest.add_venv(self.venv, True)
            return
        self.manifest.add_venv(self.venv, True)
        self.act.save_manifest()
        code, out, err = capture(argv, cwd=self.data)
        if code != 0:
            detail = (out + err).strip().splitlines()[-PIP_TAIL_LINES:]
            hint = ""
            if "ensurepip" in out + err:
                hint = " (on Debian or Ubuntu: sudo apt install python3-venv)"
            raise InstallError(f"creating the virtualenv {self.venv} failed{hint}", EXIT_ERROR, detail)
        python = venv_python(self.venv)
        if args.system_site_packages:
            self.link_parent_site_packages(python)
            code, _, _ = capture([python, "-c", "import pip"], cwd=self.venv)
            if code != 0:
                code, out, err = capture([python, "-m", "ensurepip", "--default-pip"], cwd=self.venv)
                if code != 0:
                    raise InstallError(
                        f"installing pip into {self.venv} failed",
                        EXIT_ERROR,
                        (out + err).strip().splitlines()[-PIP_TAIL_LINES:],
                    )

    def link_parent_site_packages(self, python):
        """--system-site-packages from inside a virtualenv: let the new one see this one's packages too (a .pth)."""
        if sys.prefix == getattr(sys, "base_prefix", sys.prefix):
            return
        import site

        parents = [p for p in site.getsitepackages() if os.path.abspath(p).startswith(os.path.abspath(sys.prefix))]
        code, out, _ = capture(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=self.venv
        )
        if code != 0 or not parents:
            return
        pth = os.path.join(out.strip(), "_nst_keras_installer_parent.pth")
        with open(pth, "w", encoding="utf-8") as fh:
            fh.write("\n".join(parents) + "\n")

    def pip_install(self, python, extra):
        args = self.args
        # --no-cache-dir: leave no copy of TensorFlow's wheels in pip's cache (uninstall must leave nothing behind).
        pip = [python, "-m", "pip", "install", "--upgrade", "--no-cache-dir", "--progress-bar", "off"]
        if args.no_deps:
            pip.append("--no-deps")
        if args.wheelhouse:
            pip += ["--no-index", "--find-links", args.wheelhouse]
        pip += shlex.split(args.pip_args or "", posix=os.name != "nt")  # keep C:\ paths on Windows
        shown = pip + [REPO] + extra
        self.act.note("run: " + " ".join(shlex.quote(a) for a in shown))
        if args.dry_run:
            return
        if not extra and not args.no_deps and not args.wheelhouse:
            say("  (the first install downloads TensorFlow, several hundred MB: this can take a few minutes)")
        # Build from a copy, so that the checkout gets no build/ or *.egg-info and may be read-only.
        work = tempfile.mkdtemp(prefix="nst-keras-src-")
        try:
            source = os.path.join(work, "nst-keras")
            shutil.copytree(REPO, source, ignore=source_ignore)
            code, tail = stream(
                pip + [source] + extra, self.venv, lambda line: line.startswith(PIP_SHOWN), args.verbose
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if code != 0:
            raise InstallError(
                "pip could not install nst-keras into {} (exit {}); its last lines follow{}".format(
                    self.venv, code, "" if args.verbose else " (--verbose shows everything)"
                ),
                EXIT_PIP,
                tail,
            )

    # -- step 3: the plug-in -------------------------------------------------------------

    def plugin_files(self):
        names = []
        if os.path.isdir(PLUGIN_SOURCE_DIR):
            for name in sorted(os.listdir(PLUGIN_SOURCE_DIR)):
                if os.path.isfile(os.path.join(PLUGIN_SOURCE_DIR, name)) and not name.endswith((".pyc", "~")):
                    names.append(name)
        return names

    def settings_for(self, gimp, python):
        path = os.path.join(gimp.target, SETTINGS_NAME)
        old = {}
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as fh:
                    old = json.load(fh)
            except (OSError, ValueError):
                old = {}
            if not isinstance(old, dict):
                old = {}
        env = old.get("env") if isinstance(old.get("env"), dict) else {}
        for item in self.args.env or []:
            key, _, value = item.partition("=")
            env[key] = value
        settings = {
            "python": python,
            "command_prefix": list(FLATPAK_PREFIX) if gimp.kind == "flatpak" else [],
            "env": env,
            "installed_by": INSTALLED_BY,
            "version": self.version,
        }
        for key, value in old.items():  # keep keys a newer plug-in or the user added
            settings.setdefault(key, value)
        return settings

    def install_plugin(self, gimp, python):
        say(f"Plug-in: {gimp.label} -> {gimp.target}")
        if gimp.origin == "new":
            self.act.note(f"create GIMP's profile folder {gimp.profile} (GIMP 3 has not been started yet)")
        self.act.makedirs(gimp.target)
        for name in self.plugin_files():
            with open(os.path.join(PLUGIN_SOURCE_DIR, name), "rb") as fh:
                data = fh.read()
            mode = 0o755 if name == PLUGIN_NAME + ".py" else 0o644
            self.act.write_file(os.path.join(gimp.target, name), data, mode, "the plug-in file")
        settings = self.settings_for(gimp, python)
        data = (json.dumps(settings, indent=2) + "\n").encode("utf-8")
        self.act.write_file(os.path.join(gimp.target, SETTINGS_NAME), data, 0o644, "the settings")
        self.act.save_manifest()
        if gimp.kind == "flatpak":
            self.flatpak_permission()
        if gimp.kind == "snap":
            self.warnings.append(
                f"{gimp.label}: files copied (--force-snap), but Snap's strict confinement will most likely "
                "stop the plug-in from starting the engine; the native or Flatpak GIMP works"
            )
        if gimp.origin == "new" and self.has_gimp2_profile(gimp):
            self.warnings.append(
                f"GIMP 3 had not been started yet, so the installer created {gimp.profile}. GIMP imports "
                "GIMP 2.10 settings only when that folder does not exist: to import them, uninstall (--uninstall), "
                "start GIMP 3 once, then install again"
            )

    def has_gimp2_profile(self, gimp):
        return bool(glob.glob(os.path.join(os.path.dirname(gimp.profile), "2.*")))

    def flatpak_permission(self):
        """The Flatpak GIMP's plug-in starts the engine on the host with flatpak-spawn --host: check that permission."""
        grant = " ".join(GRANT_COMMAND)
        if not shutil.which("flatpak"):
            self.warnings.append(
                "could not check the Flatpak GIMP's permissions (no `flatpak` command here). The plug-in starts the "
                f"engine outside the sandbox with flatpak-spawn --host, which needs: {grant}"
            )
            return
        code, out = run_quiet(["flatpak", "info", "--show-permissions", FLATPAK_ID])
        if code == 0 and re.search(r"(?m)^\s*" + re.escape(FLATPAK_TALK) + r"\s*=\s*(talk|own)\s*$", out):
            say(f"  the Flatpak GIMP may start programs on the host ({FLATPAK_TALK} talk permission): ok")
            return
        say("  The Flatpak GIMP runs sandboxed; its plug-in starts the engine on the host with `flatpak-spawn --host`,")
        say(f"  which needs GIMP to be allowed to talk to {FLATPAK_TALK}. Grant it with:")
        say("    " + grant)
        if not (self.args.flatpak_grant or ask("Run this command now?", False, self.args)):
            self.warnings.append("the Flatpak GIMP cannot start the engine until you run: " + grant)
            return
        override = flatpak_override_file()
        before = None
        if os.path.isfile(override):
            with open(override, encoding="utf-8", errors="replace") as fh:
                before = fh.read()
        self.act.note("run: " + grant)
        if self.args.dry_run:
            return
        missing_dirs = []
        probe = os.path.dirname(override)
        while not os.path.isdir(probe):
            missing_dirs.append(probe)
            probe = os.path.dirname(probe)
        code, out, err = capture(GRANT_COMMAND, cwd=self.data)
        if code != 0:
            self.warnings.append(f"`{grant}` failed ({last_line(err or out) or code}); run it yourself")
            return
        after = None
        if os.path.isfile(override):
            with open(override, encoding="utf-8", errors="replace") as fh:
                after = fh.read()
        if after is not None and after != before:
            recorded = self.manifest.data.get("flatpak_override")
            if not recorded:  # keep what was there before the first grant
                self.manifest.data["flatpak_override"] = {"path": override, "before": before, "after": after}
            else:
                recorded["after"] = after
            for folder in reversed(missing_dirs):
                self.manifest.add("dirs", folder)
            self.act.save_manifest()

    # -- step 4: weights and doctor ------------------------------------------------------

    def keras_state(self):
        paths = [
            keras_home(),
            os.path.join(keras_home(), "keras.json"),
            os.path.join(keras_home(), "models"),
            weights_cache_path(),
        ]
        return {p: os.path.exists(p) for p in paths}

    def record_keras_changes(self, before):
        """Record what Keras created under its home while the installer ran the engine (uninstall removes it)."""
        for path, existed in before.items():
            if existed or not os.path.exists(path):
                continue
            self.manifest.add("dirs" if os.path.isdir(path) else "files", path)
        self.act.save_manifest()

    def weights(self, python):
        if self.weights_file:
            target = weights_cache_path()
            say(f"Weights: importing {self.weights_file} -> {target}")
            if os.path.isfile(target) and md5_of(target) == self.expected_md5():
                say("  already in the Keras cache")
                return True
            self.act.makedirs(os.path.dirname(target))
            self.act.note("copy the weights to " + target)
            if self.args.dry_run:
                return True
            tmp = target + ".tmp-install"
            try:
                shutil.copyfile(self.weights_file, tmp)
                os.replace(tmp, target)
            except OSError as error:
                raise InstallError(f"cannot copy the weights to {target}: {error.strerror}", EXIT_PERMISSION) from None
            self.manifest.add("files", target)
            self.act.save_manifest()
            return True
        if self.args.skip_weights:
            say("Weights: skipped (--skip-weights)")
            return None
        env = self.engine_env()
        given = env.get("NST_KERAS_WEIGHTS")
        cached = weights_cache_path(env.get("KERAS_HOME"))
        if given:
            say(f"Weights: {given} (from --env NST_KERAS_WEIGHTS; nothing to fetch)")
            if given == "random":
                return True
            fetch = "check"
        elif os.path.isfile(cached) and md5_of(cached) == self.expected_md5():
            say(f"Weights: VGG19 already in the Keras cache ({cached})")
            return True
        else:
            say("Weights: fetching VGG19 (about 80 MB, once)")
            fetch = "fetch"
        self.act.note(f'run: {python} -c "{FETCH_CODE}"' + (" (checks the file)" if fetch == "check" else ""))
        if self.args.dry_run:
            return True
        before = self.keras_state()
        code, out, err = capture([python, "-c", FETCH_SCRIPT], cwd=self.venv, env=env)
        self.record_keras_changes(before)
        if code == 0:
            say("  weights: " + last_line(out))
            return True
        reason = last_line(err) or last_line(out) or f"exit {code}"
        self.warnings.append(
            f"the VGG19 weights could not be fetched: {reason} The engine and the plug-in are installed; with the "
            f"file downloaded ({WEIGHTS_URL}, md5 {WEIGHTS_MD5}) you can also run: "
            f"{os.path.basename(sys.executable)} {os.path.abspath(__file__)} --weights-file FILE"
        )
        return False

    def engine_env(self):
        """The engine's environment during the install: clean, plus the --env values the plug-in will pass."""
        return clean_env(dict(item.partition("=")[::2] for item in self.args.env or []))

    def doctor(self, python, weights_ok):
        if self.args.skip_doctor:
            say("Check: skipped (--skip-doctor)")
            return
        argv = [python, "-m", "nst_keras", "doctor"]
        say("Check: " + " ".join(argv[1:]))
        self.act.note("run: " + " ".join(shlex.quote(a) for a in argv))
        if self.args.dry_run:
            return
        before = self.keras_state()
        code, out, err = capture(argv, cwd=self.venv, env=self.engine_env())
        self.record_keras_changes(before)
        for line in out.strip().splitlines():
            say("    " + line)
        if code == 0:
            return
        if code == 1:
            if weights_ok is False:  # already explained by the weights warning
                return
            self.warnings.append(
                "the engine is installed but not ready (see the check above): " + (last_line(out) or last_line(err))
            )
            return
        detail = (out + "\n" + err).strip().splitlines()[-PIP_TAIL_LINES:]
        raise InstallError("the engine check `{}` failed (exit {})".format(" ".join(argv), code), EXIT_ERROR, detail)

    # -- the whole install ---------------------------------------------------------------

    def run(self):
        args = self.args
        say(f"{PROG} {self.version} (Python {platform.python_version()} at {sys.executable})")
        if args.dry_run:
            say("Dry run: nothing will be changed.")
        if os.name != "nt" and hasattr(os, "geteuid") and os.geteuid() == 0 and os.environ.get("SUDO_USER"):
            warn(
                "running under sudo installs for root, not for {}: run the installer without sudo".format(
                    os.environ["SUDO_USER"]
                )
            )
        gimps = self.gimps(choose=not args.list)
        if args.list:
            return EXIT_OK if gimps else EXIT_NO_GIMP
        self.preflight(gimps)
        if not ask("Install the engine{}?".format(" and the plug-in" if gimps else ""), True, args):
            say("Nothing changed.")
            return EXIT_ERROR
        python = self.install_engine()
        for gimp in gimps:
            self.install_plugin(gimp, python)
        weights_ok = self.weights(python)
        self.doctor(python, weights_ok)
        self.act.save_manifest()
        say("")
        for text in self.warnings:
            warn(text)
        if not gimps:
            warn(
                "no GIMP 3 was found, so the plug-in {}. The engine works from the shell: "
                "{} -m nst_keras CONTENT STYLE -o OUT. Install GIMP 3 (start it once), then run the installer "
                "again, or name its profile folder with --gimp-dir DIR".format(
                    "would not be installed" if args.dry_run else "was not installed", python
                )
            )
        if args.dry_run:
            say("Dry run finished: nothing was changed.")
        else:
            if gimps:
                say(f"Installed nst-keras {self.version} (engine: {python}).")
                say("Next: " + NEXT_STEP)
        return EXIT_OK if gimps else EXIT_NO_GIMP


# Uninstalling ---------------------------------------------------------------------------


def uninstall(args, plat):
    manifest_path = os.path.join(data_dir(plat), MANIFEST_NAME)
    say(f"{PROG} {project_version()}: uninstall")
    if not os.path.isfile(manifest_path):
        say(f"Nothing to uninstall: no installer manifest at {manifest_path}.")
        return EXIT_OK
    manifest = Manifest(manifest_path)
    act = Actions(args.dry_run, manifest)
    data = manifest.data
    files = [f for f in data["files"] if isinstance(f, str)]
    venvs = [v for v in data["venvs"] if isinstance(v, dict) and isinstance(v.get("path"), str)]
    say(f"It removes what the installer created, as listed in {manifest_path}:")
    for path in files:
        say("  file    " + path)
    for entry in venvs:
        say("  venv    " + entry["path"] + ("" if entry.get("created") else "  (kept: it existed before)"))
    if not ask("Remove these?", True, args):
        say("Nothing changed.")
        return EXIT_ERROR
    kept = []
    for path in reversed(files):
        if os.path.lexists(path) and not os.path.isdir(path):
            act.note("remove " + path)
            if not args.dry_run:
                os.remove(path)
    for folder in data["dirs"]:
        cache = os.path.join(folder, "__pycache__")  # byte code GIMP's Python may leave beside plug-in modules
        if os.path.basename(folder) == PLUGIN_NAME and os.path.isdir(cache):
            if all(name.endswith(".pyc") for name in os.listdir(cache)):
                act.note("remove " + cache)
                if not args.dry_run:
                    shutil.rmtree(cache)
    for entry in venvs:
        path = entry["path"]
        if not entry.get("created"):
            kept.append(
                f"{path} (it existed before the installer ran; remove nst-keras from it with: "
                f"{venv_python(path)} -m pip uninstall nst-keras)"
            )
            continue
        if not os.path.isdir(path):
            continue
        if not os.path.isfile(os.path.join(path, "pyvenv.cfg")):
            kept.append(f"{path} (not a virtualenv any more)")
            continue
        act.note("remove the virtualenv " + path)
        if not args.dry_run:
            shutil.rmtree(path)
    override = data.get("flatpak_override")
    if isinstance(override, dict) and isinstance(override.get("path"), str):
        path = override["path"]
        current = None
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as fh:
                current = fh.read()
        if current == override.get("after"):
            before = override.get("before")
            act.note(("restore " if before is not None else "remove ") + "the Flatpak override " + path)
            if not args.dry_run:
                if before is None:
                    os.remove(path)
                else:
                    with open(path, "w", encoding="utf-8") as fh:
                        fh.write(before)
        else:
            kept.append(
                "the Flatpak permission (its override file changed since); revoke it with: flatpak override "
                f"--user --no-talk-name={FLATPAK_TALK} {FLATPAK_ID}"
            )
    act.note("remove " + manifest_path)
    if not args.dry_run:
        os.remove(manifest_path)
    for folder in reversed(data["dirs"]):
        if not os.path.isdir(folder):
            continue
        if args.dry_run:
            act.note(f"remove folder {folder} (if empty)")
            continue
        if os.listdir(folder):
            if "nst-keras" in os.path.basename(folder):
                kept.append(f"{folder} (it holds files the installer did not create)")
            continue
        act.note("remove folder " + folder)
        os.rmdir(folder)
    for item in kept:
        say("  kept " + item)
    say("Dry run finished: nothing was changed." if args.dry_run else "Uninstalled.")
    return EXIT_OK


# Command line ---------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="install.py",
        description="Install (or upgrade) the nst-keras engine in its own virtualenv, its GIMP 3 plug-in and the "
        "VGG19 weights. Run it again to upgrade; --uninstall removes what it created.",
        epilog="Exit codes: 0 done (warnings included), 1 error, 2 usage, 3 Python too old, 4 no GIMP 3 found "
        "(the engine is installed), 5 no write permission, 6 pip failed.",
    )
    parser.add_argument(
        "--gimp-dir",
        action="append",
        metavar="DIR",
        help="a GIMP 3 profile folder or its plug-ins folder, instead of looking for GIMP (repeatable)",
    )
    parser.add_argument(
        "--venv", metavar="DIR", help="where the engine's virtualenv goes (default: the user data folder)"
    )
    device = parser.add_mutually_exclusive_group()
    device.add_argument(
        "--gpu",
        dest="device",
        action="store_const",
        const="gpu",
        help="install TensorFlow for the GPU (Linux: CUDA; Apple silicon: tensorflow-metal)",
    )
    device.add_argument(
        "--cpu", dest="device", action="store_const", const="cpu", help="install TensorFlow for the CPU"
    )
    parser.set_defaults(device="auto")
    parser.add_argument(
        "--weights-file",
        metavar="FILE",
        help=f"import a downloaded {WEIGHTS_FILENAME} (md5 checked) instead of downloading it",
    )
    parser.add_argument(
        "--flatpak-grant",
        action="store_true",
        help="let the Flatpak GIMP start the engine on the host (runs: {})".format(" ".join(GRANT_COMMAND)),
    )
    parser.add_argument(
        "--force-snap",
        action="store_true",
        help="copy the plug-in into a Snap GIMP too (its confinement will most likely block it)",
    )
    parser.add_argument(
        "--env",
        action="append",
        metavar="KEY=VALUE",
        help="an environment variable for the engine, stored in the plug-in's settings (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list the GIMP 3 installations found and stop")
    parser.add_argument("--uninstall", action="store_true", help="remove everything the installer created")
    parser.add_argument("--dry-run", action="store_true", help="print every action and change nothing")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask questions")
    parser.add_argument("-v", "--verbose", action="store_true", help="show all of pip's output")
    parser.add_argument(
        "--wheelhouse",
        metavar="DIR",
        help="install offline: pip takes every package from the wheel files in DIR and nothing from the internet "
        "(--no-index --find-links DIR). Make DIR on a machine with internet, same OS and Python version: "
        'python3 -m pip download -d DIR setuptools wheel "tensorflow>=2.16" keras numpy "pillow>=10" scipy; '
        "add --weights-file FILE (the VGG19 file, downloaded there too) for the weights",
    )
    adv = parser.add_argument_group("advanced (tests, experts)")
    adv.add_argument("--skip-weights", action="store_true", help="do not fetch the weights")
    adv.add_argument("--skip-doctor", action="store_true", help="do not run `python -m nst_keras doctor` at the end")
    adv.add_argument("--no-deps", action="store_true", help="install only nst-keras itself (pip --no-deps)")
    adv.add_argument(
        "--pip-args", metavar="ARGS", help='more arguments for pip install, e.g. "--no-index --find-links DIR"'
    )
    adv.add_argument(
        "--system-site-packages",
        action="store_true",
        help="let the virtualenv see the packages of the Python running the installer",
    )
    # Hidden, for tests: the platform whose folder layout is used, and the md5 a --weights-file must have.
    parser.add_argument("--platform", choices=("linux", "macos", "windows"), help=argparse.SUPPRESS)
    parser.add_argument("--weights-md5", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for item in args.env or []:
        if "=" not in item or not item.partition("=")[0]:
            parser.error(f"--env: expected KEY=VALUE, received {item!r}")
    if args.wheelhouse:
        args.wheelhouse = os.path.abspath(os.path.expanduser(args.wheelhouse))
        if not args.uninstall and not os.path.isdir(args.wheelhouse):
            parser.error(f"--wheelhouse: expected a folder of wheel files, received {args.wheelhouse}")
    if args.uninstall and (args.weights_file or args.list):
        parser.error("--uninstall cannot be combined with --weights-file or --list")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    plat = args.platform or detect_platform()
    try:
        if args.uninstall:
            return uninstall(args, plat)
        return Installer(args, plat).run()
    except InstallError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr, flush=True)
        for line in error.detail:
            print("    " + line, file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # a file operation that failed after the checks (a full disk, a changed permission)
        where = f" ({error.filename})" if error.filename else ""
        print(f"{PROG}: error: {error.strerror or error}{where}", file=sys.stderr, flush=True)
        return EXIT_PERMISSION if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
