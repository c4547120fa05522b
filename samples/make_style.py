"""Draw samples/style-swirls.png: a swirling, Van-Gogh-like brush-stroke painting, procedurally.

Thousands of short brush strokes follow a flow field made of a wavy drift and a few vortices;
their colours come from a night-sky palette (deep blues, cobalt, teal) with yellow and white
rings around the vortices, and dark blue-green hills at the bottom. Each stroke is painted with
a darker rim and a lighter streak on top, and a light impasto relief is shaded over the
result. Fixed seed: the same file every time.

    python samples/make_style.py [OUTPUT.png] [--size 512] [--seed 1889]

The image is our own drawing, released under CC0 (see samples/LICENSES.md).
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SKY = np.array(
    [
        (14, 26, 58),  # night navy
        (27, 58, 120),  # deep blue
        (42, 92, 170),  # ultramarine
        (64, 130, 190),  # cobalt
        (70, 150, 160),  # teal
        (150, 200, 215),  # pale cyan
    ],
    dtype=np.float64,
)
STAR = np.array([(250, 214, 70), (255, 240, 180), (236, 160, 50)], dtype=np.float64)  # yellow, cream, orange
HILLS = np.array([(10, 30, 35), (25, 60, 55), (20, 40, 80)], dtype=np.float64)


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field in 0..1: a coarse random grid, upsampled bicubically."""
    coarse = rng.random((cells, cells)).astype(np.float32)
    field = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    field = np.asarray(field, dtype=np.float64)
    return (field - field.min()) / (np.ptp(field) + 1e-9)


def make_style(size: int = 512, seed: int = 1889) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size

    # Vortices: (centre x, centre y, radius, strength, is a star with rings).
    vortices = [
        (0.30, 0.30, 0.20, 1.0, False),
        (0.68, 0.42, 0.16, -0.9, False),
        (0.82, 0.14, 0.09, 1.0, True),
        (0.14, 0.10, 0.06, 1.0, True),
        (0.52, 0.12, 0.05, -1.0, True),
        (0.92, 0.60, 0.07, 1.0, True),
    ]
    # Flow: a wavy drift to the right plus the swirl of each vortex.
    vx = 1.0 + 0.0 * x
    vy = 0.45 * np.sin(2 * math.pi * (1.6 * x + 0.3)) + 0.25 * np.sin(2 * math.pi * 3.1 * y)
    for cx, cy, radius, strength, _ in vortices:
        dx, dy = x - cx, y - cy
        r = np.sqrt(dx * dx + dy * dy) + 1e-6
        swirl = 3.0 * strength * np.exp(-((r / (1.6 * radius)) ** 2))
        vx += -dy / r * swirl
        vy += dx / r * swirl
    hills_top = 0.78 + 0.06 * np.sin(2 * math.pi * (1.3 * x + 0.2)) + 0.03 * np.sin(2 * math.pi * 4.0 * x)
    in_hills = y > hills_top
    vy = np.where(in_hills, -0.8 + 0.3 * np.sin(12 * x), vy)  # upward, flame-like strokes in the hills
    vx = np.where(in_hills, 0.3 * np.sin(9 * y), vx)
    angle = np.arctan2(vy, vx)

    # Colour: sky colours by a smooth noise value, rings of yellow/cream around the stars, dark hills.
    noise = 0.65 * smooth_noise(rng, size, 6) + 0.35 * smooth_noise(rng, size, 14)
    sky_pos = np.clip(noise * (len(SKY) - 1) * 1.1, 0, len(SKY) - 1)
    lower = np.floor(sky_pos).astype(int)
    upper = np.minimum(lower + 1, len(SKY) - 1)
    frac = (sky_pos - lower)[..., None]
    colour = SKY[lower] * (1 - frac) + SKY[upper] * frac
    for cx, cy, radius, _, is_star in vortices:
        r = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
        if is_star:
            rings = (np.floor(r / (radius * 0.32)) % 3).astype(int)
            glow = np.clip(1.25 - r / (1.9 * radius), 0, 1)[..., None]
            colour = colour * (1 - glow) + STAR[rings] * glow
        else:
            glow = np.clip(1.0 - r / radius, 0, 1)[..., None] * 0.55
            colour = colour * (1 - glow) + SKY[5] * glow
    hill_index = (smooth_noise(rng, size, 9) * 2.999).astype(int)
    colour = np.where(in_hills[..., None], HILLS[hill_index], colour)

    canvas = Image.fromarray(np.clip(colour, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(6))
    draw = ImageDraw.Draw(canvas)
    relief = Image.new("L", (size, size), 0)
    relief_draw = ImageDraw.Draw(relief)

    # Strokes, wide and long first, then finer ones on top.
    for count, width_range, length_range in (
        (2600, (6, 10), (14, 30)),
        (5200, (3, 6), (10, 24)),
        (4200, (2, 3), (6, 14)),
    ):
        for _ in range(count):
            px, py = rng.random() * size, rng.random() * size
            steps = int(rng.integers(*length_range)) // 2
            points = [(px, py)]
            for _ in range(steps):
                i, j = min(int(py), size - 1), min(int(px), size - 1)
                a = angle[i, j] + rng.normal(0, 0.05)
                px, py = px + 2.0 * math.cos(a), py + 2.0 * math.sin(a)
                if not (0 <= px < size and 0 <= py < size):
                    break
                points.append((px, py))
            if len(points) < 2:
                continue
            i, j = min(int(points[0][1]), size - 1), min(int(points[0][0]), size - 1)
            base = colour[i, j] * rng.uniform(0.85, 1.18) + rng.normal(0, 10, 3)
            width = int(rng.integers(*width_range))
            rim = tuple(int(v) for v in np.clip(base * 0.62, 0, 255))
            body = tuple(int(v) for v in np.clip(base, 0, 255))
            light = tuple(int(v) for v in np.clip(base * 1.25 + 18, 0, 255))
            draw.line(points, fill=rim, width=width + 2, joint="curve")
            draw.line(points, fill=body, width=width, joint="curve")
            if width >= 3:
                draw.line(points[: max(2, len(points) * 2 // 3)], fill=light, width=max(1, width // 3))
            relief_draw.line(points, fill=int(rng.integers(120, 256)), width=width, joint="curve")

    # Impasto: light the stroke relief from the upper left.
    height = np.asarray(relief.filter(ImageFilter.GaussianBlur(1.2)), dtype=np.float64) / 255.0
    gy, gx = np.gradient(height)
    shade = 1.0 + 0.9 * (-gx - gy)
    painted = np.asarray(canvas, dtype=np.float64) * np.clip(shade, 0.7, 1.3)[..., None]
    grain = rng.normal(0, 3.0, (size, size, 1))  # canvas grain
    return Image.fromarray(np.clip(painted + grain, 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "style-swirls.png")
    parser.add_argument("output", nargs="?", default=default)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=1889)
    args = parser.parse_args()
    make_style(args.size, args.seed).save(args.output, optimize=True)
    print(args.output)


if __name__ == "__main__":
    main()
