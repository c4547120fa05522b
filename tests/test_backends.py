"""The backend seam, on the Keras backend of this session (NST_KERAS_TEST_BACKEND; see conftest.py).

scripts/test.sh runs this module (and the other tests marked `backends`) on TensorFlow, PyTorch
and JAX. The choice itself (selection.py) is tested with fake probes; the agreement between
backends is tests/test_backend_agreement.py.
"""

import ast
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from weights_fixtures import VGG_SHAPES, random_arrays, write_legacy_h5

import nst_keras
from nst_keras import StyleConfig, backend
from nst_keras.backend import selection

pytestmark = pytest.mark.backends
REPO = pathlib.Path(__file__).resolve().parent.parent
FRAMEWORKS = {"tensorflow", "torch", "jax"}


def test_the_session_runs_on_the_requested_backend(test_backend):
    import keras

    assert backend.name() == test_backend == keras.backend.backend()
    assert backend.seam().NAME == test_backend
    if test_backend == "torch":  # set before torch started its threads, by importing the engine's modules
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_no_module_outside_the_backend_package_imports_a_framework():
    seam_files = {REPO / "nst_keras" / "backend" / f"{name}.py" for name in FRAMEWORKS}
    offenders = []
    stdlib_only = []
    for path in sorted((REPO / "nst_keras").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            tops = {name.split(".")[0] for name in names}
            if path not in seam_files and tops & FRAMEWORKS:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
            if path.parent.name == "backend" and path not in seam_files:
                stdlib_only += [f"{path.name}: {t}" for t in tops if t not in sys.stdlib_module_names]
    assert offenders == []
    # describe() imports keras inside the function, keras_api.py after the selection; the rest is stdlib.
    assert sorted(stdlib_only) == ["__init__.py: keras", "keras_api.py: keras", "keras_api.py: keras"]


def test_the_selection_module_imports_no_framework_and_no_keras():
    code = (
        "import sys; from nst_keras.backend import selection; import nst_keras.config, nst_keras.engine\n"
        "assert not {'keras', 'tensorflow', 'torch', 'jax'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# Losses and gradient --------------------------------------------------------------------------


def test_losses_match_numpy_on_this_backend():
    from keras import ops

    from nst_keras import losses

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(1, 5, 7, 4)).astype(np.float32)
    target = rng.normal(size=(4, 4)).astype(np.float32)
    image = rng.uniform(0, 255, (1, 6, 9, 3)).astype(np.float32)
    flat = feats.reshape(-1, 4).astype(np.float64)
    gram = flat.T @ flat / flat.shape[0]
    np.testing.assert_allclose(ops.convert_to_numpy(losses.gram(ops.convert_to_tensor(feats))), gram, rtol=1e-5)
    expected = np.sum((gram - target) ** 2) / (np.sum(target.astype(np.float64) ** 2) + losses.EPS)
    got = float(ops.convert_to_numpy(losses.style_loss(ops.convert_to_tensor(feats), ops.convert_to_tensor(target))))
    assert got == pytest.approx(expected, rel=1e-5)
    x = image.astype(np.float64)
    tv = np.mean((x[:, 1:] - x[:, :-1]) ** 2) + np.mean((x[:, :, 1:] - x[:, :, :-1]) ** 2)
    got = float(ops.convert_to_numpy(losses.total_variation(ops.convert_to_tensor(image))))
    assert got == pytest.approx(tv, rel=1e-5)


@pytest.fixture(scope="module")
def small_objective(tmp_path_factory):
    """An objective on the first four VGG19 convolutions, with weights from a legacy Keras .h5 file."""
    from nst_keras.features import FeatureExtractor
    from nst_keras.gradient import Objective

    path = tmp_path_factory.mktemp("weights") / "vgg_first_blocks.h5"
    write_legacy_h5(path, random_arrays(VGG_SHAPES, seed=3))
    extractor = FeatureExtractor("vgg19", ("block1_conv1", "block2_conv1", "block2_conv2"), "max", str(path))
    objective = Objective(extractor, ("block2_conv2",), {"block1_conv1": 0.5, "block2_conv1": 0.5}, 1.0, 10.0, 1.0)
    rng = np.random.default_rng(1)
    content = rng.uniform(0, 255, (32, 40, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (36, 36, 3)).astype(np.float32)
    targets = (objective.content_targets(content), objective.style_grams(style), objective.tv_reference(content))
    return objective, content, targets


def test_gradient_matches_finite_differences(small_objective):
    objective, content, targets = small_objective
    rng = np.random.default_rng(2)
    x = np.clip(content + rng.normal(0, 20, content.shape), 0, 255).astype(np.float32)
    loss, grad = objective.numpy_value_and_grad(x, *targets)
    assert np.isfinite(loss) and grad.shape == x.shape and grad.dtype == np.float32
    for seed in range(3):
        # Directions along the gradient, perturbed per pixel: a derivative well above float32 round-off.
        d = grad * np.random.default_rng(10 + seed).uniform(0.2, 1.8, size=x.shape).astype(np.float32)
        eps = 1.0 / float(np.abs(d).max())  # at most one grey level a pixel
        up = objective.numpy_value_and_grad(x + eps * d, *targets)[0]
        down = objective.numpy_value_and_grad(x - eps * d, *targets)[0]
        numeric = (up - down) / (2 * eps)
        analytic = float(np.vdot(grad.astype(np.float64), d))
        assert numeric == pytest.approx(analytic, rel=2e-2), seed


def test_out_of_memory_becomes_the_clear_message(small_objective, monkeypatch, test_backend):
    from nst_keras import cli

    objective, content, targets = small_objective
    seam = backend.seam()
    error = {
        "tensorflow": lambda: seam.tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"),
        "torch": lambda: seam.torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        "jax": lambda: RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 2147483648 bytes."),
    }[test_backend]()

    def fail(*args):
        raise error

    monkeypatch.setattr(objective, "_value_and_grad", fail)
    with pytest.raises(backend.OutOfMemory, match=r"out of memory on CPU.*40x32 px.*--max-size") as info:
        objective.numpy_value_and_grad(content, *targets)
    assert isinstance(info.value, MemoryError) and cli.error_kind(info.value) == "memory"
    monkeypatch.setattr(objective, "_value_and_grad", lambda *a: (_ for _ in ()).throw(KeyError("other")))
    with pytest.raises(KeyError):  # anything else passes through as it is
        objective.numpy_value_and_grad(content, *targets)


# The pyramid -------------------------------------------------------------------------------------


def test_pyramid_compose_is_keras_bilinear_resize_and_pull_back_its_adjoint():
    from keras import ops

    from nst_keras.pyramid import Pyramid

    rng = np.random.default_rng(0)
    pyr = Pyramid(rng.uniform(0, 255, (45, 70, 3)).astype(np.float32), 4)
    flat = rng.normal(size=pyr.size).astype(np.float32)
    levels = pyr._split(flat)
    expected = pyr.base + levels[0]
    for level in levels[1:]:
        resized = ops.image.resize(ops.convert_to_tensor(level[None]), (45, 70), interpolation="bilinear")
        expected = expected + ops.convert_to_numpy(resized)[0]
    np.testing.assert_allclose(pyr.compose(flat), expected, atol=1e-4)
    grad = rng.normal(size=(45, 70, 3)).astype(np.float32)
    lhs = float(np.vdot(pyr.pull_back(grad).astype(np.float64), flat))
    rhs = float(np.vdot(grad.astype(np.float64), (pyr.compose(flat) - pyr.base).astype(np.float64)))
    assert lhs == pytest.approx(rhs, rel=1e-4)


# Choosing the backend ------------------------------------------------------------------------------


def test_select_keeps_the_imported_keras_and_refuses_another(test_backend):
    assert backend.select("auto") == test_backend
    assert backend.select(test_backend) == test_backend
    other = next(name for name in ("tensorflow", "torch", "jax") if name != test_backend)
    with pytest.raises(ValueError, match=rf"expected {other}, but Keras was already imported with the {test_backend}"):
        backend.select(other)
    with pytest.raises(ValueError, match=r"backend: expected one of auto, tensorflow, torch, jax, received 'mxnet'"):
        backend.select("mxnet")
    with pytest.raises(ValueError, match="already imported"):
        nst_keras.stylize(np.zeros((40, 40, 3)), [np.zeros((40, 40, 3))], StyleConfig(backend=other))
    with pytest.raises(ValueError, match="backend: expected one of auto"):
        StyleConfig(backend="numpy").validate()


def test_describe_reports_backend_framework_device_and_precision(test_backend):
    info = backend.describe()
    assert info["backend"] == test_backend and info["framework"] == test_backend
    assert info["framework_version"][0].isdigit() and info["keras"][0].isdigit()
    assert info["device"].startswith(("CPU: ", "GPU: ")) and info["gpu_count"] >= 0
    assert info["mixed_precision"] == (info["compute_dtype"] != "float32")
    if info["device_kind"] == "GPU":
        assert info["compute_dtype"] == "float16"
    else:  # auto on a CPU: the faster of float32 and bfloat16 here, measured once (tests/test_precision.py)
        assert info["compute_dtype"] in ("float32", "bfloat16") and info["precision_reason"].startswith(
            info["compute_dtype"]
        )
    json.dumps(info)


def _clean_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", selection.RECORD_ENV)}
    env.update(PYTHONPATH=str(REPO), KERAS_HOME=str(tmp_path / "keras-home"), NST_KERAS_WEIGHTS="random", **extra)
    return env


def test_cli_backend_flag_chooses_before_keras_is_imported(tmp_path, test_backend):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("c.png", "s.png"):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(tmp_path / name)
    args = [str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(tmp_path / "o.png"), "--json"]
    args += ["--max-size", "48", "--min-size", "32", "--iterations", "2", "--backend", test_backend]
    code = (
        "import sys; from nst_keras.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "import keras; print('BACKEND', keras.backend.backend(), file=sys.stderr); sys.exit(rc)\n"
    )
    other = "tensorflow" if test_backend != "tensorflow" else "torch"
    env = _clean_env(tmp_path, KERAS_BACKEND=other)  # the flag beats the environment
    with open(tmp_path / "stderr.txt", "w+", encoding="utf-8") as err:
        # stdin stays open: in --json mode its end would ask the engine to stop
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], cwd=tmp_path, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
        stdout = proc.stdout.read()
        proc.wait(timeout=300)
        proc.stdin.close()
        err.seek(0)
        stderr = err.read()
    assert proc.returncode == 0, stderr
    events = [json.loads(line) for line in stdout.splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "phase" and "started" in names and names[-1] == "done"
    assert f"BACKEND {test_backend}" in stderr
    assert (tmp_path / "o.png").exists()


def test_an_uninstalled_backend_is_a_clear_input_error(tmp_path):
    code = (
        "from nst_keras.backend import selection\n"
        "selection.installed = lambda name: name == 'tensorflow'\n"
        "try:\n    selection.select('jax')\nexcept ValueError as e:\n    print(e)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=_clean_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert "backend: expected jax to be installed (--backend), but it is not" in proc.stdout, proc.stderr


class _Probes:
    def __init__(self, monkeypatch, have=(), cuda=(), nvidia=False, apple=False):
        monkeypatch.setattr(selection, "installed", lambda name: name in have)
        monkeypatch.setattr(selection, "cuda_build", lambda name: name in cuda)
        monkeypatch.setattr(selection, "has_nvidia_gpu", lambda: nvidia)
        monkeypatch.setattr(selection, "is_apple_silicon", lambda: apple)


def test_auto_order_env_then_installer_record_then_best_for_the_device(monkeypatch, tmp_path):
    monkeypatch.setattr(selection.sys, "prefix", str(tmp_path))
    monkeypatch.delenv(selection.RECORD_ENV, raising=False)
    _Probes(monkeypatch, have=("tensorflow", "torch", "jax"), cuda=("torch",), nvidia=True)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert selection.resolve("auto") == ("jax", "KERAS_BACKEND")
    assert selection.resolve("tensorflow") == ("tensorflow", "--backend")
    monkeypatch.delenv("KERAS_BACKEND")
    assert selection.resolve("auto")[0] == "torch"  # the CUDA build on an NVIDIA machine
    (tmp_path / selection.RECORD_FILE_NAME).write_text(json.dumps({"backend": "tensorflow", "reason": "x"}))
    record = tmp_path / "nst-keras-backend.json"
    assert selection.resolve("auto") == ("tensorflow", f"recorded by the installer ({record})")
    monkeypatch.setenv(selection.RECORD_ENV, "jax")
    assert selection.resolve("auto") == ("jax", f"recorded by the installer ({selection.RECORD_ENV})")


@pytest.mark.parametrize(
    "probes, expected",
    [
        ({"have": ("tensorflow", "torch", "jax")}, selection.CPU_PREFERENCE[0]),
        ({"have": ("torch", "jax")}, [n for n in selection.CPU_PREFERENCE if n != "tensorflow"][0]),
        ({"have": ("torch",)}, "torch"),
        ({"have": ("tensorflow", "torch"), "apple": True}, "torch"),
        ({"have": ("tensorflow", "torch"), "cuda": ("tensorflow",), "nvidia": True}, "tensorflow"),
        ({"have": ("tensorflow", "torch"), "cuda": ("tensorflow", "torch"), "nvidia": True}, "torch"),
        ({"have": ("tensorflow", "torch"), "cuda": ("torch",), "nvidia": False}, selection.CPU_PREFERENCE[0]),
    ],
    ids=["cpu-all", "cpu-no-tf", "cpu-torch-only", "apple-silicon", "nvidia-tf-cuda", "nvidia-both", "no-gpu"],
)
def test_best_installed_for_the_device(monkeypatch, probes, expected):
    _Probes(monkeypatch, **probes)
    assert selection.best_installed()[0] == expected


def test_nothing_installed_says_what_to_install(monkeypatch):
    _Probes(monkeypatch)
    with pytest.raises(ValueError, match="expected one of tensorflow, torch or jax to be installed, received none"):
        selection.best_installed()


def test_torch_on_a_shared_desktop_waits_passively(monkeypatch):
    for key in ("OMP_WAIT_POLICY", "XLA_PYTHON_CLIENT_PREALLOCATE"):
        monkeypatch.delenv(key, raising=False)
    selection.configure_environment("torch")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    selection.configure_environment("jax")
    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's own value is kept
    selection.configure_environment("torch")
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
