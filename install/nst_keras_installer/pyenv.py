"""The engine's Python environment: the virtualenv, the TensorFlow build to ask for, pip."""

import configparser
import os
import platform
import re
import shlex
import shutil
import sys
import tempfile

from .common import (
    EXIT_ERROR,
    EXIT_PIP,
    PIP_SHOWN,
    PIP_TAIL_LINES,
    REPO,
    InstallError,
    capture,
    run_quiet,
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


class PythonEnvSteps:
    """Installer step 2: the engine's virtualenv and pip install (mixed into Installer)."""

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
