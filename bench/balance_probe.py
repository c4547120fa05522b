"""Can a per-picture balance be chosen before the run? A short, cheap probe against the finished picture.

A default that picks the style's weight per photo and style (strong where the subject survives it,
weaker where a fine style paints the photo away) needs a predictor that is cheap to run before the
real run. This runs a probe per gallery cell at the painterly look (the peer's point: StyleConfig
look='painterly'): one scale at --size px with --steps steps of the first scale's optimiser, from the
photo; it scores the probe's structure against the photo two ways, a blurred Sobel gradient
magnitude correlation (cheap enough for the engine) and evaluate.py's HED edge correlation, and
compares both with the HED edges of the finished 384 px picture at the same look (recorded in
bench/results/gallery-384-peer-point.log). A useful probe ranks the cells as the finished pictures do.

    python bench/balance_probe.py --size 128 --steps 40     # about 1 minute on 2 cores
    python bench/balance_probe.py --size 192 --steps 150    # the 384 px run's whole first scale, about 7 minutes
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evaluate  # noqa: E402
import gallery  # noqa: E402
import numpy as np  # noqa: E402

# The finished 384 px pictures' HED edges at the painterly look (bench/results/gallery-384-peer-point.log).
FINISHED_EDGES = {
    "astronaut:swirls": 0.632,
    "chelsea:mosaic": 0.376,
    "landscape:hatching": 0.043,
    "coffee:gravel": 0.792,
    "night:swirls": 0.640,
    "rocket:mosaic": 0.555,
    "astronaut:mosaic": 0.483,
    "chelsea:hatching": 0.325,
    "landscape:gravel": 0.584,
    "coffee:swirls": 0.798,
    "night:mosaic": 0.431,
}


def sobel_structure(photo: np.ndarray, image: np.ndarray, sigma: float) -> float:
    """Pearson correlation of the blurred Sobel gradient magnitude of the two images' luma (evaluate.py's)."""
    from scipy import ndimage

    def magnitude(rgb):
        luma = evaluate._luma(rgb[..., :3])
        return evaluate._blur(np.hypot(ndimage.sobel(luma, 0), ndimage.sobel(luma, 1)), sigma)

    return float(np.corrcoef(magnitude(photo).ravel(), magnitude(image).ravel())[0, 1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="the probe's long side")
    parser.add_argument("--steps", type=int, default=40, help="the probe's steps")
    args = parser.parse_args(argv)
    from scipy.stats import pearsonr, spearmanr

    import nst_keras
    from nst_keras.resize import resize

    sources = gallery.SOURCES
    rows = []
    print(f"probe: {args.size} px, {args.steps} steps, look painterly, float32, seed 1")
    print(f"{'cell':>20} | probe: sobel  hed   | finished 384 px: hed edges | seconds")
    for cell, finished in FINISHED_EDGES.items():
        photo_name, style_name = cell.split(":")
        photo, style = gallery.load_image(sources[photo_name]), gallery.load_image(sources[style_name])
        config = gallery.base_config(args.size, min_size=args.size, iterations=args.steps, look="painterly")
        t0 = time.perf_counter()
        probe = nst_keras.stylize(photo, [style], config)
        seconds = time.perf_counter() - t0
        small = resize(photo, *probe.shape[:2])
        sobel = sobel_structure(small, probe, max(1.0, 0.02 * max(probe.shape[:2])))
        hed = evaluate.PairEvaluator(small, style).score(probe)["edges"]
        rows.append((sobel, hed, finished))
        print(
            f"{cell:>20} |        {sobel:.3f}  {hed:.3f} | {finished:.3f}                      | {seconds:.1f}",
            flush=True,
        )
    a = np.array(rows)
    for i, name in ((0, "sobel"), (1, "hed")):
        rank, linear = spearmanr(a[:, i], a[:, 2])[0], pearsonr(a[:, i], a[:, 2])[0]
        print(f"probe {name} against the finished edges: Spearman {rank:+.2f}, Pearson {linear:+.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
