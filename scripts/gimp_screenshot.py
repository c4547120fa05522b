#!/usr/bin/env python3
"""Take docs/gimp-dialog.png: the plug-in's dialog in the real GIMP 3, with its defaults and a style layer.

Opens samples/chelsea.png with samples/style-swirls.png as a hidden layer above it in the full GIMP 3
under Xvfb (the Debian trixie root of the GIMP tests, tests/gimp/gimproot.py: needs root), starts
Filters > Artistic > Neural Style Transfer on the photo with nothing chosen, so the dialog shows its
defaults and the style it picks by itself (the topmost other layer), photographs the dialog and closes
it. The test suite never writes into docs/; this script does, when run by hand:

    .venv/bin/python scripts/gimp_screenshot.py [--output docs/gimp-dialog.png]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "gimp"))
import gimproot  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "gimp-dialog.png")
    parser.add_argument("--photo", type=Path, default=REPO / "samples" / "chelsea.png")
    parser.add_argument("--style", type=Path, default=REPO / "samples" / "style-swirls.png")
    args = parser.parse_args(argv)
    root = gimproot.ensure_root()
    with tempfile.TemporaryDirectory(prefix="nst-keras-screenshot-") as work:
        work = Path(work)
        out = work / "out"
        plugin_dir = gimproot.install_plugin(work / "profile", {"python": sys.executable})
        spec = {
            "out": str(out),
            "batch": str(REPO / "tests" / "gimp" / "batch_gui.py"),
            "plugin_dir": str(plugin_dir),
            "results": str(work / "results.json"),
            "photo": str(args.photo.resolve()),
            "style": str(args.style.resolve()),
            "dialog_only": True,
            "runs": [{"name": "screenshot", "settings": {"python": sys.executable}, "action": "none"}],
        }
        (work / "spec.json").write_text(json.dumps(spec))
        proc = gimproot.run_in_root(
            root,
            ["python3", str(REPO / "tests" / "gimp" / "gui_driver.py"), str(work / "spec.json")],
            env={"GIMP3_DIRECTORY": str(work / "profile"), "NST_TEST_SPEC": str(work / "spec.json")},
            binds=[work, args.photo.resolve().parent, args.style.resolve().parent],
            timeout=300,
        )
        shot = out / "dialog.png"
        if not shot.exists():
            sys.stderr.write(f"no dialog screenshot (GUI run exit {proc.returncode}):\n{proc.stderr[-3000:]}\n")
            return 1
        args.output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
