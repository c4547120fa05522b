"""A real GIMP 3 for the tests: a cached Debian trixie root, entered without a container runtime.

The host (Debian 12) has only GIMP 2.10, which has no Python plug-ins. Debian 13 (trixie) has
GIMP 3.0, so the tests build a small trixie root with mmdebstrap once, cache it, and run GIMP
inside it with `unshare` + `chroot`. The host's Python installation, the test virtualenv and the
repository are bind-mounted at their own paths, so the engine (`python -m nst_keras`) runs inside
the root exactly as it runs on the host.

Public helpers, also used by the installer's real-install test (keep the names and signatures):

- ``ensure_root() -> Path``: the root, built when absent or when its package list changed.
  ``NST_KERAS_GIMP_ROOT`` overrides the location (default /var/cache/nst-keras/trixie-gimp3),
  ``NST_KERAS_DEBIAN_MIRROR`` the mirror (default: the Debian mirror the host's apt already uses,
  read from /etc/apt/sources.list, sources.list.d/*.list and deb822 *.sources). Raises
  RootUnavailable with a clear message (say, mmdebstrap missing or not root) that tests turn into a
  failure, never a silent skip.
- ``run_in_root(root, argv, *, env=None, binds=(), timeout=None, cwd=None)``: run argv inside the
  root in new mount and PID namespaces (proc, /dev, sys and a private tmpfs /tmp mounted; the
  default binds plus ``binds`` bind-mounted at their own paths); returns CompletedProcess with text
  stdout/stderr; everything started inside dies with it, also on timeout.
- ``run_gimp_batch(root, gimp3_dir, script_path, *, env=None, timeout=300, binds=(), gui=False)``:
  run ``gimp-console-3.0 -i -n --quit -c --batch-interpreter=python-fu-eval -b
  'exec(open(SCRIPT).read())'`` with GIMP3_DIRECTORY=gimp3_dir (a GIMP profile folder); gui=True
  runs the full ``gimp-3.0`` instead (needs DISPLAY in env, e.g. an Xvfb started in the same root).
- ``install_plugin(gimp3_dir, settings=None) -> Path``: copy the plug-in's folder into the profile
  (plug-ins/nst-keras/: nst-keras.py executable, its modules, and nst_keras/protocol.py as
  protocol.py, as the installer does) and write nst-keras-settings.json next to it when settings is
  a dict; returns the plug-in's folder.

Needs root privileges (mount namespaces, chroot), `unshare` (util-linux) and, for the first
build only, `mmdebstrap` (``apt-get install -y mmdebstrap``) and access to a Debian mirror.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SOURCE = REPO / "gimp_plugin" / "nst-keras"  # the plug-in's folder
PROTOCOL_SOURCE = REPO / "nst_keras" / "protocol.py"  # copied into it as protocol.py

DEFAULT_ROOT = Path("/var/cache/nst-keras/trixie-gimp3")
SUITE = "trixie"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
DEBIAN_SUITES = ("oldoldstable", "oldstable", "stable", "testing", "unstable", "sid", "experimental")
DEBIAN_CODENAMES = ("buster", "bullseye", "bookworm", "trixie", "forky", "duke")
VARIANT = "minbase"
PACKAGES = ("gimp", "python3-gi", "gir1.2-gimp-3.0", "xvfb", "xauth", "xdotool", "imagemagick")
MARKER = ".nst-keras-root.json"  # at the top of the root: how it was built

ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RootUnavailable(RuntimeError):
    """The GIMP 3 root cannot be built or entered; the message says why and what to do."""


def root_spec() -> dict:
    """What the root is built from; a change triggers a rebuild."""
    return {"suite": SUITE, "variant": VARIANT, "packages": sorted(PACKAGES)}


def root_path() -> Path:
    return Path(os.environ.get("NST_KERAS_GIMP_ROOT") or DEFAULT_ROOT)


def _marker_ok(root: Path) -> bool:
    try:
        return json.loads((root / MARKER).read_text()) == root_spec()
    except (OSError, ValueError):
        return False


def _check_host(need_build: bool) -> None:
    if os.geteuid() != 0:
        raise RootUnavailable("the GIMP 3 tests need root (they use mount namespaces and chroot); run them as root")
    if shutil.which("unshare") is None:
        raise RootUnavailable("`unshare` (util-linux) is missing: apt-get install -y util-linux")
    if need_build and shutil.which("mmdebstrap") is None:
        raise RootUnavailable(
            "cannot build the GIMP 3 test root: `mmdebstrap` is missing. Run `apt-get install -y mmdebstrap` "
            "(or point NST_KERAS_GIMP_ROOT at a trixie root with: " + ", ".join(PACKAGES) + ")"
        )


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def parse_one_line_sources(text: str) -> list:
    """Entries of a one-line-style sources.list: [{'types', 'uris', 'suites', 'components'}]."""
    entries = []
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest.startswith("["):  # [ option=value ... ]
            rest = rest.partition("]")[2].strip()
        fields = rest.split()
        if kind not in ("deb", "deb-src") or len(fields) < 2:
            continue
        entries.append({"types": [kind], "uris": [fields[0]], "suites": [fields[1]], "components": fields[2:]})
    return entries


def parse_deb822_sources(text: str) -> list:
    """Entries of a deb822-style .sources file (stanzas of Key: value, blank-line separated)."""
    entries = []
    for stanza in re.split(r"\n[ \t]*\n", text.replace("\r", "")):
        fields: dict = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1] in (" ", "\t") and key:  # a continuation line
                fields[key] += " " + raw.strip()
                continue
            key, sep, value = raw.partition(":")
            if not sep:
                key = None
                continue
            key = key.strip().lower()
            fields[key] = value.strip()
        if not fields or fields.get("enabled", "yes").lower() == "no":
            continue
        entries.append(
            {
                "types": fields.get("types", "").split(),
                "uris": fields.get("uris", "").split(),
                "suites": fields.get("suites", "").split(),
                "components": fields.get("components", "").split(),
            }
        )
    return entries


def host_codename(os_release: Path = Path("/etc/os-release")) -> str | None:
    try:
        for line in os_release.read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.partition("=")[2].strip().strip('"') or None
    except OSError:
        pass
    return None


def read_apt_entries(paths=APT_SOURCES) -> list:
    """Every entry of the host's apt sources: sources.list, and *.list / *.sources in the folders given."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".list", ".sources") and p.is_file())
        elif path.is_file():
            files.append(path)
    entries = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        entries += parse_deb822_sources(text) if path.suffix == ".sources" else parse_one_line_sources(text)
    return entries


def _is_release(suite: str, releases: set) -> bool:
    """'trixie', 'bookworm-updates', 'stable' are; 'bookworm-security' and 'nodistro' are not."""
    base = suite.split("/")[0]
    return not base.endswith("-security") and (base in releases or base.rsplit("-", 1)[0] in releases)


def mirror_from_entries(entries, codename: str | None = None) -> str | None:
    """The Debian archive among apt entries: a binary (deb) source with the main component whose suite is
    a Debian release (the host's codename, a known codename or a suite name), not the security archive.
    The first such URI wins, as apt's own order; None when there is none."""
    releases = set(DEBIAN_SUITES) | set(DEBIAN_CODENAMES) | ({codename} if codename else set())
    for entry in entries:
        if "deb" not in entry["types"] or "main" not in entry["components"]:
            continue
        if not any(_is_release(suite, releases) for suite in entry["suites"]):
            continue
        for uri in entry["uris"]:
            if uri.split(":", 1)[0] in ("http", "https", "file"):
                return uri.rstrip("/")
    return None


def debian_mirror(paths=APT_SOURCES) -> str:
    """NST_KERAS_DEBIAN_MIRROR, else the Debian mirror the host's apt uses; RootUnavailable if none."""
    override = os.environ.get("NST_KERAS_DEBIAN_MIRROR")
    if override:
        return override
    mirror = mirror_from_entries(read_apt_entries(paths), host_codename())
    if mirror is None:
        raise RootUnavailable(
            "cannot build the GIMP 3 test root: no Debian mirror found in the host's apt sources "
            f"({', '.join(map(str, paths))}); set NST_KERAS_DEBIAN_MIRROR to one"
        )
    return mirror


@contextlib.contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_root(timeout: float = 1800) -> Path:
    """Return the cached GIMP 3 root, building it with mmdebstrap if it is absent or outdated.

    The build goes to a temporary folder next to the root and is renamed into place only when
    complete, so an interrupted build never leaves a half-made root behind. A lock file makes
    parallel callers wait for one build.
    """
    root = root_path()
    if root.is_dir() and _marker_ok(root):
        _check_host(need_build=False)
        return root
    _check_host(need_build=True)
    with _lock(root.parent / (root.name + ".lock")):
        if root.is_dir() and _marker_ok(root):
            return root
        build = root.parent / f"{root.name}.build-{os.getpid()}"
        shutil.rmtree(build, ignore_errors=True)
        mirror = debian_mirror()
        cmd = [
            "mmdebstrap",
            f"--variant={VARIANT}",
            "--include=" + ",".join(PACKAGES),
            SUITE,
            str(build),
            mirror,
        ]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(build, ignore_errors=True)
            raise RootUnavailable(
                f"building the GIMP 3 root timed out after {timeout:.0f} s: {shlex.join(cmd)}"
            ) from exc
        if proc.returncode != 0:
            shutil.rmtree(build, ignore_errors=True)
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise RootUnavailable(
                f"building the GIMP 3 root failed (exit {proc.returncode}): {shlex.join(cmd)}\n{tail}\n"
                "Is the Debian mirror reachable? NST_KERAS_DEBIAN_MIRROR selects another one."
            )
        (build / MARKER).write_text(json.dumps(root_spec()))
        old = None
        if root.exists():
            old = root.parent / f"{root.name}.old-{os.getpid()}"
            os.rename(root, old)
        os.rename(build, root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        sys.stderr.write(f"built the GIMP 3 root {root} in {time.monotonic() - start:.0f} s\n")
        return root


def default_binds() -> list:
    """Host paths every run sees at the same path: the Python installation, the virtualenv, the repo."""
    base = Path(sys.base_prefix).resolve()
    if str(base) in ("/", "/usr", "/bin", "/lib", "/etc"):
        raise RootUnavailable(
            f"the test Python lives in {base}, which cannot be bind-mounted into the GIMP root at its own path; "
            "run the tests from a virtualenv made from a Python installed elsewhere (pyenv, /opt, uv)"
        )
    return [base, Path(sys.prefix).resolve(), REPO]


def _normalize_binds(paths) -> list:
    """Absolute, existing, de-duplicated paths; a path inside another one is dropped."""
    out = []
    for p in sorted({Path(p).resolve() for p in paths}, key=lambda p: len(p.parts)):
        if not p.exists():
            raise FileNotFoundError(f"cannot bind {p} into the GIMP root: it does not exist")
        if any(p == q or q in p.parents for q in out):
            continue
        out.append(p)
    return out


def run_in_root(
    root: Path,
    argv,
    *,
    env: dict | None = None,
    binds=(),
    timeout: float | None = None,
    cwd: str | None = None,
) -> subprocess.CompletedProcess:
    """Run `argv` inside `root` (see the module docstring); returns CompletedProcess (text output).

    The environment starts empty (env -i) with HOME=/tmp, PATH, LANG=C.UTF-8, then `env`.
    /tmp inside is a fresh tmpfs; binds under /tmp are mounted on top of it.
    """
    root = Path(root)
    mounts = [
        f"mount -t proc proc {shlex.quote(str(root / 'proc'))}",
        f"mount --rbind /dev {shlex.quote(str(root / 'dev'))}",
        f"mount --rbind /sys {shlex.quote(str(root / 'sys'))}",
        f"mount -t tmpfs -o mode=1777 tmpfs {shlex.quote(str(root / 'tmp'))}",
    ]
    for path in _normalize_binds([*default_binds(), *binds]):
        target = shlex.quote(str(root) + str(path))
        if path.is_dir():
            mounts.append(f"mkdir -p {target}")
        else:
            mounts.append(f"mkdir -p $(dirname {target}) && touch {target}")
        mounts.append(f"mount --bind {shlex.quote(str(path))} {target}")
    full_env = {"HOME": "/tmp", "PATH": ROOT_PATH, "LANG": "C.UTF-8"}
    full_env.update(env or {})
    inner = ["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in full_env.items()]]
    command = list(map(str, argv))
    if cwd:
        command = ["/bin/sh", "-c", f"cd {shlex.quote(cwd)} && exec " + shlex.join(command)]
    script = "set -e\n" + "\n".join(mounts) + f"\nexec chroot {shlex.quote(str(root))} {shlex.join(inner + command)}"
    # New mount and PID namespaces: the mounts vanish with the namespace, and when the outer
    # process dies (also on timeout) the kernel kills everything that was started inside.
    outer = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private"]
    outer += ["/bin/sh", "-c", script]
    return subprocess.run(
        outer,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        start_new_session=True,
    )


def run_gimp_batch(
    root: Path,
    gimp3_dir: Path,
    script_path: Path,
    *,
    env: dict | None = None,
    timeout: float = 300,
    binds=(),
    gui: bool = False,
) -> subprocess.CompletedProcess:
    """Run a Python batch script in GIMP 3 (console, or the full GUI with gui=True) inside the root.

    GIMP exits 0 when the script ran, 64 when it raised. `gimp3_dir` (the profile) and the
    script's folder are bind-mounted automatically.
    """
    gimp3_dir = Path(gimp3_dir)
    script_path = Path(script_path).resolve()
    gimp3_dir.mkdir(parents=True, exist_ok=True)
    code = f"exec(open({str(script_path)!r}).read())"
    if gui:
        argv = ["gimp-3.0", "-n", "--no-splash", "--quit", "--batch-interpreter=python-fu-eval", "-b", code]
    else:
        argv = ["gimp-console-3.0", "-i", "-n", "--quit", "-c", "--batch-interpreter=python-fu-eval", "-b", code]
    full_env = {"GIMP3_DIRECTORY": str(gimp3_dir)}
    full_env.update(env or {})
    return run_in_root(
        root,
        argv,
        env=full_env,
        binds=[gimp3_dir, script_path.parent, *binds],
        timeout=timeout,
    )


def install_plugin(gimp3_dir: Path, settings: dict | None = None, source: Path = PLUGIN_SOURCE) -> Path:
    """Copy the plug-in's folder into a GIMP profile folder, as the installer does: every file of
    gimp_plugin/nst-keras/ (nst-keras.py executable, the modules not) plus nst_keras/protocol.py as
    protocol.py; write its settings file when given."""
    folder = Path(gimp3_dir) / "plug-ins" / "nst-keras"
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(source).iterdir()):
        if path.is_file() and path.suffix == ".py":
            target = folder / path.name
            shutil.copyfile(path, target)
            target.chmod(0o755 if path.name == "nst-keras.py" else 0o644)
    shutil.copyfile(PROTOCOL_SOURCE, folder / "protocol.py")
    (folder / "protocol.py").chmod(0o644)
    settings_file = folder / "nst-keras-settings.json"
    if settings is None:
        settings_file.unlink(missing_ok=True)
    else:
        settings_file.write_text(json.dumps(settings, indent=2))
    return folder
