#!/usr/bin/env bash
# Set everything up and run the whole test suite: lint (ruff), types (mypy), unit and integration tests,
# and the GIMP 3 plug-in tests in a Debian trixie root (built once, then cached in
# /var/cache/nst-keras). Needs root (or sudo) for apt and for the GIMP root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
echo "test: ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "test: mypy"
.venv/bin/python -m mypy  # settings in pyproject.toml: nst_keras, lenient
echo "test: pytest"
set +e
NST_KERAS_TEST_BACKEND=tensorflow .venv/bin/python -m pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    echo "test: pytest collected no tests" >&2
    exit 1
fi
if [[ $rc -ne 0 || $# -gt 0 ]]; then  # a failure, or a chosen selection: no backend runs
    exit $rc
fi
# The tests marked `backends` (tests/conftest.py BACKEND_SUBSET, tests/test_backends.py) again on
# PyTorch and on JAX: the same engine, CLI and weights on every Keras backend.
for backend in torch jax; do
    echo "test: pytest -m backends on $backend"
    set +e
    NST_KERAS_TEST_BACKEND=$backend .venv/bin/python -m pytest -m backends -q
    rc=$?
    set -e
    if [[ $rc -ne 0 ]]; then
        exit $rc
    fi
done
# The plug-in end to end in the real GIMP 3 with the engine on PyTorch (the scripted cases; the
# dialog tests ran above on TensorFlow).
echo "test: GIMP plug-in end to end on torch"
NST_KERAS_TEST_BACKEND=torch .venv/bin/python -m pytest tests/gimp/test_gimp_plugin.py -q -m "not gimp_dialog"
