"""GIMP from Flathub: its folders, and the permission its plug-in needs to start the engine on the host."""

import os
import re
import shutil

from .common import ask, capture, env_dir, home, last_line, run_quiet, say

FLATPAK_ID = "org.gimp.GIMP"
FLATPAK_TALK = "org.freedesktop.Flatpak"
FLATPAK_PREFIX = ["flatpak-spawn", "--host"]
GRANT_COMMAND = ["flatpak", "override", "--user", "--talk-name=" + FLATPAK_TALK, FLATPAK_ID]


def flatpak_user_dir():
    value = os.environ.get("FLATPAK_USER_DIR")
    if value:
        return value
    return os.path.join(env_dir("XDG_DATA_HOME", os.path.join(home(), ".local", "share")), "flatpak")


def flatpak_override_file():
    return os.path.join(flatpak_user_dir(), "overrides", FLATPAK_ID)


class FlatpakSteps:
    """Installer step: the Flatpak GIMP's permission to talk to the host (mixed into Installer)."""

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
