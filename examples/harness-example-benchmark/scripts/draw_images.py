"""Draw the example's images (48x48 PNGs of coloured shapes); run once, the PNGs are committed.

python scripts/draw_images.py src/harness_example_benchmark/data/images
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (50, 90, 230),
    "yellow": (240, 220, 40),
}
# image name -> background and (colour, shape, box) of each shape
SCENES = {
    "red-circle": ((200, 200, 200), [("red", "circle", (8, 8, 40, 40))]),
    "blue-square": ((30, 30, 40), [("blue", "square", (10, 10, 38, 38))]),
    "green-triangle": ((200, 200, 200), [("green", "triangle", (6, 8, 42, 40))]),
    "two-shapes": (
        (30, 30, 40),
        [("yellow", "circle", (3, 3, 21, 21)), ("red", "square", (27, 27, 45, 45))],
    ),
    "three-shapes": (
        (200, 200, 200),
        [
            ("blue", "circle", (3, 3, 21, 21)),
            ("blue", "triangle", (27, 3, 45, 21)),
            ("green", "square", (3, 27, 21, 45)),
        ],
    ),
    "yellow-square": ((30, 30, 40), [("yellow", "square", (12, 12, 36, 36))]),
}


def draw(background, shapes) -> Image.Image:
    image = Image.new("RGB", (48, 48), background)
    pen = ImageDraw.Draw(image)
    for color, shape, (x0, y0, x1, y1) in shapes:
        fill = COLORS[color]
        if shape == "circle":
            pen.ellipse((x0, y0, x1, y1), fill=fill)
        elif shape == "square":
            pen.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            pen.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=fill)
    return image


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, (background, shapes) in SCENES.items():
        draw(background, shapes).save(out / f"{name}.png", optimize=True)
