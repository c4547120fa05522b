"""The engine's Python environment: the virtualenv, pip installing the engine and its backend, the record."""

import json
import os
import shlex
import shutil
import sys
import tempfile

from . import backend
from .common import (
    EXIT_ERROR,
    EXIT_PIP,
    PIP_SHOWN,
    PIP_TAIL_LINES,
    REPO,
    InstallError,
    capture,
    say,
    source_ignore,
    stream,
)


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


class PythonEnvSteps:
    """Installer step 2: the engine's virtualenv and pip install (mixed into Installer)."""

    def choose_backend(self):
        """Pick the backend (this machine's, or --backend / --gpu / --cpu), say which and why; return the plan."""
        args = self.args
        facts = backend.probe_facts(self.plat, args.machine, None if args.nvidia is None else args.nvidia == "yes")
        choice = backend.pick(facts, args.backend, args.device)
        torch_index = args.torch_index or os.environ.get(backend.TORCH_INDEX_ENV, "")
        plan = backend.plan(choice, torch_index, no_deps=args.no_deps, offline=bool(args.wheelhouse))
        say("Backend: " + plan.choice.reason)
        for note in plan.notes:
            say("  note: " + note)
        self.warnings += plan.warnings
        return plan

    def install_engine(self, plan):
        args = self.args
        python = venv_python(self.venv)
        choice = plan.choice
        say(f"Engine: virtualenv {self.venv} ({backend.NAMES[choice.backend]} on {choice.device.upper()})")
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
        self.pip_install(python, plan)
        self.write_record(plan)
        return python

    def write_record(self, plan):
        """After pip succeeded: the record of the backend, which the engine reads (uninstall removes it)."""
        data = backend.record_data(plan, self.version)
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        self.act.write_file(backend.record_path(self.venv), text.encode("utf-8"), 0o644, "the backend record")

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

    def pip_install(self, python, plan):
        args = self.args
        # --no-cache-dir: leave no copy of the frameworks' wheels in pip's cache (uninstall must leave nothing behind).
        pip = [python, "-m", "pip", "install", "--upgrade", "--no-cache-dir", "--progress-bar", "off"]
        if args.wheelhouse:
            pip += ["--no-index", "--find-links", args.wheelhouse]
        pip += shlex.split(args.pip_args or "", posix=os.name != "nt")  # keep C:\ paths on Windows
        if args.dry_run:
            for command in plan.commands:
                self.act.note("run: " + " ".join(shlex.quote(a) for a in pip + command))
            return
        if not args.no_deps and not args.wheelhouse:
            say(f"  (the first install downloads {backend.download_size(plan)}: this can take a few minutes)")
        # Build from a copy, so that the checkout gets no build/ or *.egg-info and may be read-only.
        work = tempfile.mkdtemp(prefix="nst-keras-src-")
        try:
            source = os.path.join(work, "nst-keras")
            shutil.copytree(REPO, source, ignore=source_ignore)
            for command in plan.commands:
                self.act.note("run: " + " ".join(shlex.quote(a) for a in pip + command))
                argv = pip + [source if a == REPO else a for a in command]
                code, tail = stream(argv, self.venv, lambda line: line.startswith(PIP_SHOWN), args.verbose)
                if code != 0:
                    raise InstallError(
                        "pip could not install nst-keras into {} (exit {}); its last lines follow{}".format(
                            self.venv, code, "" if args.verbose else " (--verbose shows everything)"
                        ),
                        EXIT_PIP,
                        tail,
                    )
        finally:
            shutil.rmtree(work, ignore_errors=True)
