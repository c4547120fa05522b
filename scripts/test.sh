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
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    echo "test: pytest collected no tests" >&2
    exit 1
fi
exit $rc
