"""Draw the gallery's own pictures, procedurally: two content scenes and two styles.

- `landscape.png`: mountains with snow caps, a lake that mirrors them, pines and a low sun;
- `night.png`: a city skyline at night, lit windows, a moon, stars, and the lights' reflection;
- `style-mosaic.png`: flat colour areas, a Voronoi mosaic of tesserae with dark grout;
- `style-hatching.png`: fine pen hatching, cross-hatched in the darker areas of a shaded still life.

Fixed seeds: the same files every time (numpy and Pillow only; another version of either may
change a few pixels). Our own drawings, released under CC0 (see samples/LICENSES.md).

    python samples/make_gallery_images.py [--out samples]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _ridge(rng, width, base, amplitude, roughness):
    """A mountain ridge line: heights (px from the top) at each column, by midpoint displacement."""
    n = 1
    heights = np.array([base + rng.uniform(-amplitude, amplitude) for _ in range(2)])
    while n < width:
        mids = (heights[:-1] + heights[1:]) / 2 + rng.normal(0, amplitude, size=len(heights) - 1)
        out = np.empty(len(heights) * 2 - 1)
        out[0::2], out[1::2] = heights, mids
        heights, n, amplitude = out, len(out), amplitude * roughness
    return np.interp(np.linspace(0, len(heights) - 1, width), np.arange(len(heights)), heights)


def make_landscape(width=600, height=400, seed=7) -> Image.Image:
    rng = np.random.default_rng(seed)
    horizon = int(height * 0.62)
    y = np.arange(height)[:, None] / height
    sky = np.array([120, 170, 225]) * (1 - y[..., None]) + np.array([250, 205, 160]) * y[..., None]
    img = np.broadcast_to(sky, (height, width, 3)).copy()
    im = Image.fromarray(img.astype(np.uint8))
    d = ImageDraw.Draw(im)
    d.ellipse([width * 0.68, horizon * 0.38, width * 0.68 + 56, horizon * 0.38 + 56], fill=(255, 236, 170))
    layers = [
        (horizon * 0.45, 60, (92, 100, 135), True),
        (horizon * 0.70, 40, (60, 82, 98), False),
        (horizon * 0.92, 18, (38, 70, 52), False),
    ]
    for base, amp, colour, snow in layers:
        ridge = _ridge(rng, width, base, amp, 0.55)
        for x in range(width):
            top = int(ridge[x])
            d.line([(x, top), (x, horizon)], fill=colour)
            if snow and top < base - 15:
                d.line([(x, top), (x, top + (base - 15 - top) * 0.6)], fill=(240, 244, 250))
    # Pines on the near shore.
    for _ in range(26):
        x = rng.uniform(0, width)
        if width * 0.35 < x < width * 0.6:
            continue
        h = rng.uniform(30, 70)
        d.polygon([(x, horizon - h), (x - h * 0.22, horizon + 2), (x + h * 0.22, horizon + 2)], fill=(20, 48, 30))
    arr = np.asarray(im).astype(np.float64)
    # The lake: the scene mirrored, darker and bluer, with ripples.
    below = height - horizon
    mirror = arr[horizon - below : horizon][::-1] if below <= horizon else arr[:horizon][::-1]
    rows = np.arange(below)
    shift = (3 * np.sin(rows * 0.9) * (rows / below)).astype(int)
    for r in range(below):
        arr[horizon + r] = 0.55 * np.roll(mirror[r], shift[r], axis=0) + 0.45 * np.array([40, 70, 110])
    for _ in range(60):  # glints
        r, x = int(rng.uniform(horizon + 4, height)), int(rng.uniform(0, width - 30))
        arr[r, x : x + int(rng.uniform(8, 30))] = arr[r, x : x + 1] * 0.4 + 150
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))


def make_night(width=600, height=400, seed=11) -> Image.Image:
    rng = np.random.default_rng(seed)
    waterline = int(height * 0.72)
    y = np.arange(height)[:, None] / height
    sky = np.array([8, 12, 38]) * (1 - y[..., None]) + np.array([40, 36, 80]) * y[..., None]
    im = Image.fromarray(np.broadcast_to(sky, (height, width, 3)).astype(np.uint8))
    d = ImageDraw.Draw(im)
    for _ in range(140):
        x, yy = rng.uniform(0, width), rng.uniform(0, waterline * 0.6)
        s = rng.uniform(0.5, 1.6)
        d.ellipse([x - s, yy - s, x + s, yy + s], fill=(230, 230, 255))
    d.ellipse([width * 0.12, 40, width * 0.12 + 60, 100], fill=(245, 240, 210))
    d.ellipse([width * 0.12 + 18, 34, width * 0.12 + 78, 94], fill=tuple(int(v) for v in sky[20, 0]))
    x = 0
    while x < width:
        bw = int(rng.uniform(34, 80))
        bh = int(rng.uniform(70, 220))
        top = waterline - bh
        shade = int(rng.uniform(18, 40))
        d.rectangle([x, top, x + bw, waterline], fill=(shade, shade, shade + 12))
        if rng.random() < 0.3:  # a spire
            d.polygon([(x + bw / 2 - 4, top), (x + bw / 2 + 4, top), (x + bw / 2, top - 30)], fill=(shade,) * 3)
        for wy in range(top + 8, waterline - 8, 12):
            for wx in range(x + 5, x + bw - 7, 10):
                if rng.random() < 0.45:
                    warm = (255, int(rng.uniform(190, 230)), int(rng.uniform(90, 150)))
                    d.rectangle([wx, wy, wx + 4, wy + 6], fill=warm)
        x += bw + int(rng.uniform(0, 6))
    arr = np.asarray(im).astype(np.float64)
    below = height - waterline
    for r in range(below):
        src = arr[waterline - 1 - r]
        wobble = int(4 * math.sin(r * 1.3))
        arr[waterline + r] = 0.5 * np.roll(src, wobble, axis=0) + 0.5 * np.array([10, 14, 30])
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.5))


MOSAIC_PALETTE = [
    (196, 58, 40),
    (232, 170, 50),
    (40, 90, 160),
    (30, 130, 110),
    (235, 225, 200),
    (120, 60, 120),
    (20, 40, 70),
]


def make_mosaic(size=512, seed=3) -> Image.Image:
    """Tesserae: a jittered grid of Voronoi cells, each one flat colour from bands of a palette, dark grout."""
    rng = np.random.default_rng(seed)
    step = 22
    g = np.arange(step / 2, size, step)
    gx, gy = np.meshgrid(g, g)
    pts = np.stack([gx.ravel(), gy.ravel()], 1) + rng.uniform(-7, 7, size=(gx.size, 2))
    yy, xx = np.mgrid[0:size, 0:size]
    best = np.full((size, size), np.inf)
    second = np.full((size, size), np.inf)
    label = np.zeros((size, size), int)
    for i, (px, py) in enumerate(pts):
        dist = np.hypot(xx - px, yy - py)
        closer = dist < best
        second = np.where(closer, best, np.minimum(second, dist))
        label = np.where(closer, i, label)
        best = np.minimum(best, dist)
    # Colour by large flat regions: concentric bands and diagonal stripes of the palette.
    cx, cy = pts[:, 0] / size, pts[:, 1] / size
    band = (np.floor(np.hypot(cx - 0.4, cy - 0.45) * 7) + np.floor((cx + cy) * 2)).astype(int)
    colours = np.array([MOSAIC_PALETTE[b % len(MOSAIC_PALETTE)] for b in band], float)
    colours += rng.normal(0, 10, colours.shape)
    img = colours[label]
    grout = (second - best) < 2.2
    img[grout] = (35, 30, 28)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def make_hatching(size=512, seed=5) -> Image.Image:
    """Ink hatching on paper: line density follows the shading of a few spheres and a table edge."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    tone = 0.25 + 0.5 * yy  # lit wall above, darker table below
    for cx, cy, r in ((0.35, 0.45, 0.2), (0.7, 0.55, 0.15), (0.55, 0.25, 0.1)):
        d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / r**2
        inside = d2 < 1
        lit = np.clip(1 - np.hypot(xx - cx + 0.4 * r, yy - cy + 0.4 * r) / (1.4 * r), 0, 1)
        tone = np.where(inside, 0.9 - 0.85 * lit, tone)
    darkness = np.clip(tone, 0, 1)
    paper = Image.new("L", (size, size), 246)
    d = ImageDraw.Draw(paper)
    angles = [math.radians(a) for a in (35, -50, 80, 5)]
    for k, angle in enumerate(angles):
        threshold = 0.2 + 0.18 * k
        spacing = 5
        dx, dy = math.cos(angle), math.sin(angle)
        nx, ny = -dy, dx
        for off in np.arange(-size * 1.5, size * 1.5, spacing):
            off += rng.uniform(-1, 1)
            for t in np.arange(-size * 1.5, size * 1.5, 6):
                x0, y0 = size / 2 + nx * off + dx * t, size / 2 + ny * off + dy * t
                if 0 <= x0 < size and 0 <= y0 < size and darkness[int(y0), int(x0)] > threshold:
                    x1, y1 = x0 + dx * 7, y0 + dy * 7
                    d.line([(x0, y0), (x1, y1)], fill=int(rng.uniform(20, 60)), width=1)
    rgb = Image.merge("RGB", [paper, paper, paper.point(lambda v: int(v * 0.93))])  # warm paper tint
    return rgb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = parser.parse_args(argv)
    out = Path(args.out)
    for name, make in (
        ("landscape.png", make_landscape),
        ("night.png", make_night),
        ("style-mosaic.png", make_mosaic),
        ("style-hatching.png", make_hatching),
    ):
        make().save(out / name, optimize=True)
        print(out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
