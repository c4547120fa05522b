"""The plug-in's files: the folder gimp_plugin/nst-keras plus the engine's protocol module, and its settings."""

import glob
import json
import os

from .common import REPO, say
from .flatpak import FLATPAK_PREFIX

PLUGIN_NAME = "nst-keras"
PLUGIN_SOURCE_DIR = os.path.join(REPO, "gimp_plugin", PLUGIN_NAME)
SETTINGS_NAME = "nst-keras-settings.json"
INSTALLED_BY = "nst-keras installer"
# The plug-in imports the engine's protocol (event names, exit codes, decode_event) from its own folder: the
# installer copies nst_keras/protocol.py there, so that there is no hand-made copy.
PROTOCOL_SOURCE = os.path.join(REPO, "nst_keras", "protocol.py")
PROTOCOL_NAME = "protocol.py"


class PluginSteps:
    """Installer step 3: copy the plug-in folder and write its settings (mixed into Installer)."""

    def plugin_files(self):
        """{file name in the plug-in folder: its source}: every file of gimp_plugin/nst-keras, and protocol.py from
        the engine (its copy wins over one in the plug-in's source folder)."""
        files = {}
        if os.path.isdir(PLUGIN_SOURCE_DIR):
            for name in sorted(os.listdir(PLUGIN_SOURCE_DIR)):
                path = os.path.join(PLUGIN_SOURCE_DIR, name)
                if os.path.isfile(path) and not name.endswith((".pyc", "~")):
                    files[name] = path
        files[PROTOCOL_NAME] = PROTOCOL_SOURCE
        return files

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
        for name, source in self.plugin_files().items():
            with open(source, "rb") as fh:
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
