"""The install, step by step: the backend, GIMP, preflight checks, engine, plug-in, weights, doctor."""

import os
import platform
import shlex
import sys

from .common import (
    EXIT_ERROR,
    EXIT_NO_GIMP,
    EXIT_OK,
    EXIT_PERMISSION,
    NEXT_STEP,
    PIP_TAIL_LINES,
    PROG,
    REPO,
    InstallError,
    ask,
    capture,
    check_writable,
    data_dir,
    last_line,
    needs_dir,
    project_version,
    say,
    warn,
)
from .flatpak import FlatpakSteps
from .gimp import GimpSteps
from .manifest import MANIFEST_NAME, Actions, Manifest
from .plugin import PLUGIN_NAME, PLUGIN_SOURCE_DIR, SETTINGS_NAME, PluginSteps
from .pyenv import PythonEnvSteps
from .weights import WeightsSteps, weights_cache_path


class Installer(GimpSteps, PythonEnvSteps, PluginSteps, FlatpakSteps, WeightsSteps):
    def __init__(self, args, plat):
        self.args = args
        self.plat = plat
        self.data = data_dir(plat)
        self.venv = os.path.abspath(os.path.expanduser(args.venv)) if args.venv else os.path.join(self.data, "venv")
        self.manifest = Manifest(os.path.join(self.data, MANIFEST_NAME))
        self.act = Actions(args.dry_run, self.manifest)
        self.version = project_version()
        self.warnings = []

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
        plan = None if args.list else self.choose_backend()
        gimps = self.gimps(choose=not args.list)
        if args.list:
            return EXIT_OK if gimps else EXIT_NO_GIMP
        self.preflight(gimps)
        if not ask("Install the engine{}?".format(" and the plug-in" if gimps else ""), True, args):
            say("Nothing changed.")
            return EXIT_ERROR
        python = self.install_engine(plan)
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
