"""Finding GIMP 3 (native, Flatpak, Snap, macOS, Windows) and its user plug-in folders."""

import glob
import os
import re
import shutil

from .common import ask, env_dir, home, run_quiet, say
from .flatpak import FLATPAK_ID
from .plugin import PLUGIN_NAME

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


class GimpSteps:
    """Installer step 1: which GIMPs get the plug-in (mixed into Installer)."""

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
