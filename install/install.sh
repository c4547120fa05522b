#!/bin/sh
# Install nst-keras (Linux, macOS): finds Python 3.10 or newer and runs install.py with all arguments.
#   sh install/install.sh [--dry-run] [--gpu|--cpu] [--backend NAME[:cpu|:gpu]] [--torch-index URL] [--uninstall] ...   (see: sh install/install.sh --help)
# $PYTHON chooses the interpreter. Exit 3 when no Python 3.10+ is found.
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
here=$(CDPATH='' cd -- "$here" && pwd) || exit 1

ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1
}

if [ -n "${PYTHON:-}" ]; then
    candidates=$PYTHON
else
    candidates="python3.13 python3.12 python3.11 python3.10 python3 python"
    for v in 14 15 16 17 18 19; do candidates="python3.$v $candidates"; done
fi
for candidate in $candidates; do
    if command -v "$candidate" >/dev/null 2>&1 && ok "$candidate"; then
        exec "$candidate" "$here/install.py" "$@"
    fi
done

echo "nst-keras installer: error: Python 3.10 or newer was not found (tried: ${PYTHON:-python3.10 and newer, python3, python}); install it (Debian/Ubuntu: sudo apt install python3 python3-venv; Fedora: sudo dnf install python3; macOS: https://www.python.org/downloads/ or brew install python) or set PYTHON=/path/to/python3, then run this again." >&2
exit 3
