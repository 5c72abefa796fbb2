"""The world's scenes: what an image holds (shapes in a 2x2 grid, a word, or a sum), how it is
drawn at any size, and the labels the tiny vision tower is pretrained to predict."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from harness.data.synthetic.glyphs import GLYPH_H, draw_text, text_width

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (50, 90, 230),
    "yellow": (240, 220, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
}
SHAPES = ("circle", "square", "triangle")
REGIONS = ("top left", "top right", "bottom left", "bottom right")
BACKGROUNDS: dict[str, tuple[int, int, int]] = {"dark": (30, 30, 40), "light": (200, 200, 200)}
WORDS = ("CAT", "DOG", "SUN", "CUP", "BOX", "HAT", "MAP", "PEN", "BUS", "KEY")
KINDS = ("shapes", "word", "sum")
CORNERS = {"circle": 0, "square": 4, "triangle": 3}
IMAGE_SIZE = 48

# Classes per label key of `scene_labels` (0 always means "none" where a key can be empty).
LABEL_CLASSES: dict[str, int] = {
    "kind": len(KINDS),
    "background": len(BACKGROUNDS),
    "count": len(REGIONS) + 1,
    **{f"color_{r}": len(COLORS) + 1 for r in range(len(REGIONS))},
    **{f"shape_{r}": len(SHAPES) + 1 for r in range(len(REGIONS))},
    "word": len(WORDS) + 1,
    "sum": 19,
    "text_color": len(COLORS) + 1,
}


@dataclass(frozen=True)
class Thing:
    """One coloured shape in one of the four regions (index into REGIONS)."""

    color: str
    shape: str
    region: int

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def a_name(self) -> str:
        """The name with its article: "a red circle", "an orange square"."""
        return ("an " if self.color[0] in "aeiou" else "a ") + self.name


@dataclass(frozen=True)
class Scene:
    """Everything an image shows; `variant` seeds the small jitter of positions and sizes."""

    kind: str
    background: str
    things: tuple[Thing, ...] = ()
    text: str = ""
    text_color: str = ""
    variant: int = 0

    @property
    def addends(self) -> tuple[int, int]:
        left, _, right = self.text.partition("+")
        return int(left), int(right)

    def at(self, region: int) -> Thing | None:
        return next((t for t in self.things if t.region == region), None)


def random_scene(rng: random.Random, kind: str | None = None) -> Scene:
    """A scene of `kind` (shapes 60%, word 20%, sum 20% when not given)."""
    kind = kind or rng.choices(KINDS, weights=(3, 1, 1))[0]
    background = rng.choice(sorted(BACKGROUNDS))
    variant = rng.randrange(1 << 30)
    if kind == "shapes":
        regions = sorted(rng.sample(range(len(REGIONS)), rng.randint(1, len(REGIONS))))
        pairs = rng.sample([(c, s) for c in COLORS for s in SHAPES], len(regions))
        things = tuple(Thing(c, s, r) for (c, s), r in zip(pairs, regions, strict=True))
        return Scene(kind, background, things=things, variant=variant)
    color = rng.choice(sorted(COLORS))
    if kind == "word":
        return Scene(kind, background, text=rng.choice(WORDS), text_color=color, variant=variant)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    return Scene(kind, background, text=f"{a}+{b}", text_color=color, variant=variant)


def render(scene: Scene, size: int = IMAGE_SIZE) -> Image.Image:
    """Draw the scene as an RGB image of size x size pixels."""
    image = Image.new("RGB", (size, size), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    jitter = random.Random(scene.variant)
    cell = size / 2
    for thing in scene.things:
        extent = cell * jitter.uniform(0.55, 0.75)
        slack = (cell - extent) / 2
        x0 = (thing.region % 2) * cell + slack + jitter.uniform(-slack, slack) * 0.6
        y0 = (thing.region // 2) * cell + slack + jitter.uniform(-slack, slack) * 0.6
        box = (round(x0), round(y0), round(x0 + extent) - 1, round(y0 + extent) - 1)
        fill = COLORS[thing.color]
        if thing.shape == "circle":
            draw.ellipse(box, fill=fill)
        elif thing.shape == "square":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon(
                [((box[0] + box[2]) / 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill
            )
    if scene.text:
        scale = max(1, size // 24)
        width, height = text_width(scene.text, scale), GLYPH_H * scale
        x = (size - width) // 2 + jitter.randint(-(size - width) // 4, (size - width) // 4)
        y = (size - height) // 2 + jitter.randint(-(size - height) // 4, (size - height) // 4)
        draw_text(draw, x, y, scene.text, scale, COLORS[scene.text_color])
    return image


def png_bytes(image: Image.Image) -> bytes:
    """PNG with fixed encoder settings and no metadata, so a seed gives identical bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1, optimize=False)
    return buffer.getvalue()


def scene_labels(scene: Scene) -> dict[str, int]:
    """The tower's targets for one scene; keys and class counts are LABEL_CLASSES."""
    colors, shapes = sorted(COLORS), list(SHAPES)
    labels = {
        "kind": KINDS.index(scene.kind),
        "background": sorted(BACKGROUNDS).index(scene.background),
        "count": len(scene.things),
        "word": WORDS.index(scene.text) + 1 if scene.kind == "word" else 0,
        "sum": sum(scene.addends) if scene.kind == "sum" else 0,
        "text_color": colors.index(scene.text_color) + 1 if scene.text_color else 0,
    }
    for region in range(len(REGIONS)):
        thing = scene.at(region)
        labels[f"color_{region}"] = colors.index(thing.color) + 1 if thing else 0
        labels[f"shape_{region}"] = shapes.index(thing.shape) + 1 if thing else 0
    return labels
