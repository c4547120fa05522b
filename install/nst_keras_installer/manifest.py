"""What the installer created (the manifest), every change going through Actions (so --dry-run only prints),
and --uninstall, which removes exactly what the manifest lists."""

import json
import os
import shutil

from .common import EXIT_ERROR, EXIT_OK, EXIT_PERMISSION, PROG, InstallError, ask, data_dir, project_version, say
from .flatpak import FLATPAK_ID, FLATPAK_TALK
from .plugin import INSTALLED_BY, PLUGIN_NAME
from .pyenv import venv_python

MANIFEST_NAME = "install-manifest.json"


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
