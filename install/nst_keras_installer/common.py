"""Shared by every step: exit codes, errors, output, the platform's folders, write checks, subprocesses."""

import hashlib
import os
import re
import subprocess
import sys
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

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # install/
REPO = os.path.dirname(HERE)
NEXT_STEP = "Open GIMP, choose a layer, then Filters > Artistic > Neural Style Transfer..."

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
