"""bench/cells.py --sheet: each cell's picture lands in its row and its recipe's column, at its own pixels."""

import numpy as np
from conftest import load_bench
from PIL import Image


def test_side_by_side_places_each_recipe_in_its_column(tmp_path):
    cells = load_bench("cells")  # it puts bench/ on sys.path for its own imports (gallery, recipes)
    rng = np.random.default_rng(0)
    names, pairs = ["default", "split-s91"], [("chelsea", "hatching"), ("landscape", "mosaic")]
    sources = {n: s for n, _, s in cells.gallery.PHOTOS} | {n: s for n, _, s in cells.gallery.STYLES}
    scores = {"style": 0.1, "w2": 0.05, "content": 0.4, "edges": 0.8, "ssim": 0.3}
    images = {
        (name, photo, style): (rng.integers(0, 256, (64, 96, 3)).astype(np.float32), {"scores": scores, "seconds": 9.0})
        for name in names
        for photo, style in pairs
    }
    path = tmp_path / "sheet.png"
    cells.side_by_side(images, names, pairs, sources, 96, path)
    sheet = np.asarray(Image.open(path).convert("RGB"))
    pad, label_h, size = 6, 50, 96
    assert sheet.shape == (2 * (size + label_h + pad) + pad, 3 * (size + pad) + pad, 3)
    for row, (photo, style) in enumerate(pairs):
        for col, name in enumerate(names, start=1):
            x0, y0 = pad + col * (size + pad), pad + row * (size + label_h + pad) + (size - 64) // 2
            placed = sheet[y0 : y0 + 64, x0 : x0 + 96].astype(np.float32)
            np.testing.assert_array_equal(placed, images[(name, photo, style)][0])
        label = sheet[pad + row * (size + label_h + pad) + size + 2 :][:40, pad + size + pad :]
        assert (label < 128).any()  # the scores are written under the cells
