"""The network weights: import a downloaded file or let the engine fetch it, in Keras's cache.

The file's name, hash and URL and Keras's folder rules come from nst_keras/weights_facts.py, the module the engine
uses too, loaded from the checkout by its path (the engine is not importable from the system Python)."""

import importlib.util
import os
import shutil
import sys

from .common import EXIT_PERMISSION, REPO, InstallError, capture, clean_env, last_line, md5_of, say


def _load_facts():
    path = os.path.join(REPO, "nst_keras", "weights_facts.py")
    spec = importlib.util.spec_from_file_location("nst_keras_weights_facts", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


facts = _load_facts()
VGG19 = facts.SPECS["vgg19"]
WEIGHTS_FILENAME = VGG19.filename
WEIGHTS_MD5 = VGG19.md5
WEIGHTS_URL = VGG19.origin

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


def keras_home():
    """Keras's base folder, as keras (and nst_keras.weights) compute it."""
    return facts.keras_home()


def weights_cache_path(keras_home_value=None):
    """Where the VGG19 file goes in the Keras cache (of KERAS_HOME=`keras_home_value` when given), as the engine's."""
    environ = dict(os.environ)
    if keras_home_value:
        environ["KERAS_HOME"] = keras_home_value
    return facts.cache_path("vgg19", environ=environ)


class WeightsSteps:
    """Installer step 4: the weights in Keras's cache (mixed into Installer)."""

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
            fetch = "check"  # the engine still resolves them: it says whether the file is usable
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
        if fetch == "check":
            self.warnings.append(f"the weights given with --env NST_KERAS_WEIGHTS cannot be used: {reason}")
            return False
        self.warnings.append(
            f"the VGG19 weights could not be fetched: {reason} The engine and the plug-in are installed; with the "
            f"file downloaded ({WEIGHTS_URL}, md5 {WEIGHTS_MD5}) you can also run: "
            f"{os.path.basename(sys.executable)} {os.path.abspath(__file__)} --weights-file FILE"
        )
        return False

    def engine_env(self):
        """The engine's environment during the install: clean, plus the --env values the plug-in will pass."""
        return clean_env(dict(item.partition("=")[::2] for item in self.args.env or []))
