"""What is said about a scene: stage-1 captions, detailed descriptions, and the question/answer
pairs of LLaVA's three kinds. The same phrasing serves training data and benchmark references,
so a tiny model can learn every answer format it is later asked in. Short answers state what
the image shows without repeating the question's words ("It is at the top left."), so the
key-fact judge credits only what was read from the image: echoed question words let a model
that never saw the image score about 60% of the reference on LLaVA-Bench."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from harness.data.synthetic.scenes import CORNERS, REGIONS, Scene, Thing

DETAIL_PROMPTS = (
    "Describe the following image in detail.",
    "Provide a detailed description of the given image.",
    "Give an elaborate explanation of the image you see.",
    "What do you see in this image? Describe it in detail.",
)


@dataclass(frozen=True)
class QA:
    """One question about a scene: the assistant's sentence and MM-Vet style ground truth."""

    question: str
    answer: str
    key: str  # short ground truth; <AND>/<OR> as in MM-Vet
    capabilities: tuple[str, ...]


def _count(n: int, noun: str) -> str:
    return f"There is 1 {noun}" if n == 1 else f"There are {n} {noun}s"


def _how_many(n: int) -> str:
    return "There is 1." if n == 1 else f"There are {n}."


def _listing(things: tuple[Thing, ...]) -> str:
    names = [t.a_name for t in things]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def caption(scene: Scene, rng: random.Random) -> str:
    """A short stage-1 caption."""
    if scene.kind == "shapes":
        if rng.random() < 0.5:
            return f"{_listing(scene.things).capitalize()} on a {scene.background} background."
        placed = [f"{t.a_name} at the {REGIONS[t.region]}" for t in scene.things]
        return "; ".join(placed).capitalize() + "."
    if scene.kind == "word":
        color, background = scene.text_color, scene.background
        return f"The word {scene.text} in {color} letters on a {background} background."
    return f"The sum {scene.text} in {scene.text_color} on a {scene.background} background."


def description(scene: Scene) -> str:
    """The detailed description: the answer to detail prompts and LLaVA-Bench's context."""
    if scene.kind == "shapes":
        shapes = "shape" if len(scene.things) == 1 else "shapes"
        parts = [
            f"The image shows {len(scene.things)} {shapes} on a {scene.background} background."
        ]
        parts += [f"At the {REGIONS[t.region]} there is {t.a_name}." for t in scene.things]
        return " ".join(parts)
    if scene.kind == "word":
        return (
            f"The image shows the word {scene.text} written in {scene.text_color} letters "
            f"on a {scene.background} background."
        )
    a, b = scene.addends
    return (
        f"The image shows the sum {scene.text} written in {scene.text_color} "
        f"on a {scene.background} background. The result of the sum is {a + b}."
    )


def detail_qa(scene: Scene, rng: random.Random) -> QA:
    if scene.kind == "shapes":
        key = "<AND>".join(t.name for t in scene.things)
        caps: tuple[str, ...] = ("rec", "gen")
    else:
        key, caps = scene.text, ("ocr", "gen")
    return QA(rng.choice(DETAIL_PROMPTS), description(scene), key, caps)


def _unique(scene: Scene, attribute: str) -> list[Thing]:
    values = [getattr(t, attribute) for t in scene.things]
    return [t for t in scene.things if values.count(getattr(t, attribute)) == 1]


def _conv_shapes(scene: Scene, rng: random.Random) -> list[QA]:
    n, things = len(scene.things), scene.things
    thing = rng.choice(things)
    region = rng.randrange(len(REGIONS))
    held = scene.at(region)
    color = rng.choice([t.color for t in things] + ["red", "green", "blue"])
    k = sum(t.color == color for t in things)
    probe = rng.choice([thing, Thing(rng.choice(["red", "blue", "green"]), "circle", -1)])
    found = next((t for t in things if t.name == probe.name), None)
    where = REGIONS[thing.region]
    out = [
        QA(
            "How many shapes are in the image?",
            _how_many(n),
            str(n),
            ("rec",),
        ),
        QA(
            f"Where is the {thing.name}?",
            f"It is at the {where}.",
            where.replace(" ", "<AND>"),
            ("rec", "spat"),
        ),
        QA(
            f"What is at the {REGIONS[region]} of the image?",
            f"There is {held.a_name} there." if held else "There is nothing there.",
            held.name.replace(" ", "<AND>") if held else "nothing",
            ("rec", "spat"),
        ),
        QA(
            f"How many {color} shapes are there?",
            _how_many(k),
            str(k),
            ("rec",),
        ),
        QA(
            f"Is there {probe.a_name} in the image?",
            f"Yes, at the {REGIONS[found.region]}." if found else "No, there is not.",
            "yes" if found else "no",
            ("rec",),
        ),
    ]
    if by_shape := _unique(scene, "shape"):
        t = rng.choice(by_shape)
        out.append(QA(f"What color is the {t.shape}?", f"It is {t.color}.", t.color, ("rec",)))
    if by_color := _unique(scene, "color"):
        t = rng.choice(by_color)
        out.append(
            QA(
                f"What shape is the {t.color} object?",
                f"It is a {t.shape}.",
                t.shape,
                ("rec",),
            )
        )
    return out


def conv_qa(scene: Scene, rng: random.Random) -> list[QA]:
    """Every conversation-kind question that fits the scene (callers pick among them)."""
    background = QA(
        "What color is the background?",
        f"It is {scene.background}.",
        scene.background,
        ("rec",),
    )
    if scene.kind == "shapes":
        return [*_conv_shapes(scene, rng), background]
    color = QA("What color is the text?", f"It is {scene.text_color}.", scene.text_color, ("rec",))
    if scene.kind == "word":
        return [
            QA(
                "What word is written in the image?",
                f"It is {scene.text}.",
                scene.text,
                ("ocr",),
            ),
            color,
            background,
        ]
    a, b = scene.addends
    return [
        QA(
            "What is written in the image?",
            f"It is {scene.text}.",
            scene.text,
            ("ocr",),
        ),
        QA(
            "What is the result of the sum in the image?",
            f"It is {a + b}.",
            str(a + b),
            ("ocr", "math"),
        ),
        color,
        background,
    ]


def _neighbour(scene: Scene, thing: Thing, side: str) -> Thing | None:
    column = thing.region % 2
    if (side == "left") == (column == 0):
        return None
    return scene.at(thing.region + (-1 if side == "left" else 1))


def _complex_shapes(scene: Scene, rng: random.Random) -> list[QA]:
    n, thing = len(scene.things), rng.choice(scene.things)
    corners = [f"the {t.name} has {CORNERS[t.shape]} corners" for t in scene.things]
    total = sum(CORNERS[t.shape] for t in scene.things)
    side = rng.choice(["left", "right"])
    other = _neighbour(scene, thing, side)
    out = [
        QA(
            f"If the {thing.name} were removed, how many shapes would be left?",
            f"{_count(n, 'shape')}; then {n - 1}.",
            str(n - 1),
            ("rec", "math"),
        ),
        QA(
            f"What is to the {side} of the {thing.name}?",
            f"It is the {other.name}." if other else "Nothing is there.",
            other.name.replace(" ", "<AND>") if other else "nothing",
            ("rec", "spat"),
        ),
        QA(
            "How many corners do the shapes in the image have in total?",
            f"{'; '.join(corners).capitalize()}, so the shapes have {total} corners in total.",
            str(total),
            ("rec", "know", "math"),
        ),
    ]
    rows = {t.region // 2: t for t in scene.things}
    if len(rows) == 2:
        first, second = rng.sample([rows[0], rows[1]], 2)
        relation = "above" if first.region < second.region else "below"
        out.append(
            QA(
                f"Is the {first.name} above or below the {second.name}?",
                f"It is {relation}.",
                relation,
                ("rec", "spat"),
            )
        )
    return out


def complex_qa(scene: Scene, rng: random.Random) -> list[QA]:
    """Every complex-reasoning question that fits the scene (callers pick among them)."""
    if scene.kind == "shapes":
        return _complex_shapes(scene, rng)
    if scene.kind == "word":
        word = scene.text
        return [
            QA(
                "What is the first letter of the word in the image?",
                f"{word} starts with {word[0]}.",
                word[0],
                ("ocr",),
            ),
            QA(
                "What is the last letter of the word in the image?",
                f"{word} ends with {word[-1]}.",
                word[-1],
                ("ocr",),
            ),
        ]
    a, b = scene.addends
    big = "greater" if a + b > 10 else "not greater"
    return [
        QA(
            "What is the answer to the sum in the image? Explain.",
            f"{a} plus {b} is {a + b}.",
            str(a + b),
            ("ocr", "math"),
        ),
        QA(
            "Is the result of the sum in the image greater than 10?",
            f"{a} plus {b} is {a + b}, {big} than 10: {'yes' if a + b > 10 else 'no'}.",
            "yes" if a + b > 10 else "no",
            ("ocr", "math"),
        ),
    ]


QA_KINDS: dict[str, Callable[[Scene, random.Random], list[QA]]] = {
    "conv": conv_qa,
    "detail": lambda scene, rng: [detail_qa(scene, rng)],
    "complex": complex_qa,
}
