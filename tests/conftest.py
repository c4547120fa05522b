"""Shared test set-up: no test touches the user's Keras cache or the network."""

import os
import tempfile

# Before anything imports keras: keras creates its cache folder on import.
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="nst-keras-test-keras-home-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The planner's calibration (time coefficients, the precision 'auto' uses on a CPU) of this session
# only: a choice cached on this machine by real runs does not change what the tests compute.
os.environ.setdefault("NST_KERAS_CACHE_DIR", tempfile.mkdtemp(prefix="nst-keras-test-cache-"))
os.environ.pop("NST_KERAS_WEIGHTS", None)
os.environ.pop("NST_KERAS_WEIGHTS_URL", None)

# The Keras backend of the whole session (and of the CLI runs it starts): NST_KERAS_TEST_BACKEND,
# default tensorflow. scripts/test.sh runs the suite on TensorFlow, then the tests marked
# `backends` on torch and on jax.
TEST_BACKEND = os.environ.get("NST_KERAS_TEST_BACKEND", "").strip().lower() or "tensorflow"
if TEST_BACKEND not in ("tensorflow", "torch", "jax"):
    raise SystemExit(f"NST_KERAS_TEST_BACKEND: expected tensorflow, torch or jax, received {TEST_BACKEND!r}")
os.environ["KERAS_BACKEND"] = TEST_BACKEND
os.environ.pop("NST_KERAS_BACKEND", None)


import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sample_images():
    """The bundled sample photo and style as float32 RGB arrays."""
    from PIL import Image

    def load(name):
        return np.asarray(Image.open(ROOT / "samples" / name).convert("RGB"), dtype=np.float32)

    return load("chelsea.png"), load("style-swirls.png")


def pytest_report_header(config):
    return f"Keras backend: {TEST_BACKEND} (NST_KERAS_TEST_BACKEND)"


def load_bench(name: str):
    """bench/<name>.py as a module (bench/ is scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"nst_bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def bench_evaluate():
    """bench/evaluate.py, the evaluator that shares no code with the engine's losses, as a module."""
    return load_bench("evaluate")


@pytest.fixture(scope="session")
def test_backend():
    """The Keras backend this session runs on."""
    return TEST_BACKEND


# Engine tests that are about no one backend: scripts/test.sh runs them (with every test marked
# `backends`, e.g. all of test_backends.py) on torch and on jax too.
BACKEND_SUBSET = (
    "test_engine.py::test_output_has_target_size_keeps_alpha_and_reports_progress",
    "test_engine.py::test_same_seed_same_result_and_noise_init_depends_on_seed",
    "test_engine.py::test_each_scale_runs_the_optimiser_its_settings_name[auto]",
    "test_engine.py::test_stop_request_raises_cancelled_with_the_best_image_at_full_size",
    "test_engine.py::test_bad_arrays_are_refused_clearly",
    "test_tiling.py::test_tiled_run_matches_the_untiled_one_and_reports_tiles",
    "test_tiling.py::test_cancel_mid_tile_returns_the_best_image_so_far",
    "test_tiling.py::test_style_grams_in_windows_match_the_whole_image",
    "test_pyramid.py::test_pull_back_is_the_exact_adjoint_of_compose",
    "test_planner.py::test_stylize_refuses_a_run_that_cannot_fit_with_the_clear_message",
    "test_planner.py::test_real_calibration_is_a_short_measurement_and_plausible",
    "test_weights.py::test_load_legacy_file_into_truncated_vgg19",
    "test_weights.py::test_keras3_weights_file_round_trip",
    "test_weights.py::test_hed_into_truncated_vgg16",
    "test_cli.py::test_json_run_with_non_ascii_paths_keeps_alpha",
    "test_cli.py::test_bad_input_is_one_line_exit_1_and_no_file",
    "test_cli.py::test_closing_stdin_stops_and_keep_partial_writes_the_image",
    "test_cli.py::test_doctor_with_random_weights_is_ready",
    "test_features.py::test_replicate_pad_repeats_the_edge_pixels",
    "test_features.py::test_a_flat_image_gives_flat_first_features_up_to_the_borders",
)


def pytest_collection_modifyitems(config, items):
    found = set()
    for item in items:
        name = item.nodeid.split("/")[-1]
        if name in BACKEND_SUBSET or name.split("[")[0] in BACKEND_SUBSET:
            item.add_marker(pytest.mark.backends)
            found.update((name, name.split("[")[0]))
        if "gui" in getattr(item, "fixturenames", ()):  # tests/gimp: the interactive dialog under Xvfb
            item.add_marker(pytest.mark.gimp_dialog)
    # A renamed or moved test would silently leave the torch and jax runs: when whole files are
    # collected, every name above whose file is among them must be found.
    if not any("::" in str(arg) for arg in config.args):
        files = {item.nodeid.split("/")[-1].split("::")[0] for item in items}
        stale = [n for n in BACKEND_SUBSET if n.split("::")[0] in files and n not in found]
        if stale:
            raise pytest.UsageError(f"tests/conftest.py BACKEND_SUBSET names tests that were not collected: {stale}")
