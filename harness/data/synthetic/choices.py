"""Letter-format multiple choice about scenes, in MMBench's layout: six L-2 skills, leaf
categories, 2-4 options. Answer letters are dealt round-robin so that every letter is the
answer equally often and a model that always says one letter scores exactly chance."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.data.synthetic.scenes import (
    COLORS,
    CORNERS,
    KINDS,
    REGIONS,
    WORDS,
    Scene,
    random_scene,
)

LETTERS = "ABCD"
MMBENCH_INSTRUCTION = "Answer with the option's letter from the given choices directly."


@dataclass(frozen=True)
class Choice:
    """A multiple-choice question whose options are in their final (lettered) order."""

    question: str
    options: tuple[str, ...]
    answer: str  # the correct letter
    hint: str
    category: str
    l2_category: str


@dataclass(frozen=True)
class Leaf:
    """One leaf ability: the scenes it needs and how it asks (question, right, wrongs, hint)."""

    name: str
    l2: str
    kind: str | None
    ask: Callable[[Scene, random.Random], tuple[str, str, list[str], str] | None]
    options: int = 4


def _wrong(pool: list[str], right: str, n: int, rng: random.Random) -> list[str]:
    return rng.sample([p for p in pool if p != right], n)


def _scene_kind(scene: Scene, rng: random.Random):
    names = {"shapes": "shapes", "word": "letters", "sum": "digits"}
    return (
        "What does the image show?",
        names[scene.kind],
        [v for k, v in names.items() if k != scene.kind],
        "",
    )


def _style(scene: Scene, rng: random.Random):
    other = "light" if scene.background == "dark" else "dark"
    return "What color is the background of the image?", scene.background, [other], ""


def _localize(scene: Scene, rng: random.Random):
    thing = rng.choice(scene.things)
    where = REGIONS[thing.region]
    return (
        f"Where is the {thing.name} in the image?",
        where,
        _wrong(list(REGIONS), where, 3, rng),
        "",
    )


def _attribute(scene: Scene, rng: random.Random):
    if scene.kind != "shapes":
        question, right = "What color is the text?", scene.text_color
    else:
        shapes = [t.shape for t in scene.things]
        unique = [t for t in scene.things if shapes.count(t.shape) == 1]
        if not unique:
            return None
        thing = rng.choice(unique)
        question, right = f"What color is the {thing.shape}?", thing.color
    return question, right, _wrong(sorted(COLORS), right, 3, rng), ""


def _ocr(scene: Scene, rng: random.Random):
    return (
        "What word is written in the image?",
        scene.text,
        _wrong(list(WORDS), scene.text, 3, rng),
        "",
    )


def _spatial(scene: Scene, rng: random.Random):
    pairs = [
        (a, b)
        for a in scene.things
        for b in scene.things
        if b.region == a.region + 1 and a.region % 2 == 0
    ]
    if not pairs:
        return None
    left, right = rng.choice(pairs)
    if rng.random() < 0.5:
        question, anchor, target = f"What is to the left of the {right.name}?", right, left
    else:
        question, anchor, target = f"What is to the right of the {left.name}?", left, right
    pool = sorted({f"{c} {s}" for c in COLORS for s in CORNERS} - {anchor.name})
    others = [t.name for t in scene.things if t not in (anchor, target)]
    wrongs = (others + _wrong([p for p in pool if p not in others], target.name, 3, rng))[:3]
    return question, f"the {target.name}", [f"the {w}" for w in wrongs], ""


def _counting(scene: Scene, rng: random.Random):
    n = str(len(scene.things))
    return "How many shapes are in the image?", n, _wrong(["1", "2", "3", "4"], n, 3, rng), ""


def _corners(scene: Scene, rng: random.Random):
    thing = rng.choice(scene.things)
    right = str(CORNERS[thing.shape])
    hint = (
        "A circle has 0 corners, a triangle has 3 and a square has 4." if rng.random() < 0.5 else ""
    )
    question = f"How many corners does the shape at the {REGIONS[thing.region]} have?"
    return question, right, _wrong(["0", "3", "4", "5"], right, 3, rng), hint


def _relation(scene: Scene, rng: random.Random):
    rows = {t.region // 2: t for t in scene.things}
    if len(rows) < 2:
        return None
    first, second = rng.sample([rows[0], rows[1]], 2)
    relation = "above" if first.region < second.region else "below"
    other = "below" if relation == "above" else "above"
    return f"Is the {first.name} above or below the {second.name}?", relation, [other], ""


def _arithmetic(scene: Scene, rng: random.Random):
    total = sum(scene.addends)
    hint = "Add the two numbers shown in the image." if rng.random() < 0.5 else ""
    pool = [str(v) for v in range(2, 19)]
    return (
        "What is the result of the sum shown in the image?",
        str(total),
        _wrong(pool, str(total), 3, rng),
        hint,
    )


def _removal(scene: Scene, rng: random.Random):
    thing = rng.choice(scene.things)
    left = str(len(scene.things) - 1)
    question = f"If the {thing.name} were removed, how many shapes would be left?"
    return question, left, _wrong(["0", "1", "2", "3"], left, 3, rng), ""


LEAVES: tuple[Leaf, ...] = (
    Leaf("image_scene", "CP", None, _scene_kind, options=3),
    Leaf("image_style", "CP", None, _style, options=2),
    Leaf("object_localization", "FP-S", "shapes", _localize),
    Leaf("attribute_recognition", "FP-S", None, _attribute),
    Leaf("ocr", "FP-S", "word", _ocr),
    Leaf("spatial_relationship", "FP-C", "shapes", _spatial),
    Leaf("object_counting", "FP-C", "shapes", _counting),
    Leaf("physical_property_reasoning", "AR", "shapes", _corners),
    Leaf("physical_relation", "RR", "shapes", _relation, options=2),
    Leaf("structuralized_imagetext_understanding", "LR", "sum", _arithmetic),
    Leaf("future_prediction", "LR", "shapes", _removal),
)


def balanced_choices(
    leaf: Leaf, count: int, rng: random.Random, pool: Sequence[Scene] = ()
) -> list[tuple[Scene, Choice]]:
    """`count` questions of one leaf (a multiple of its option count), letters dealt evenly;
    scenes come from `pool` when given (so training reuses its images), else are drawn."""
    if count % leaf.options:
        raise ValueError(f"{leaf.name}: {count} is not a multiple of {leaf.options} options")
    letters = [LETTERS[i % leaf.options] for i in range(count)]
    rng.shuffle(letters)
    by_kind = {kind: [scene for scene in pool if scene.kind == kind] for kind in KINDS}
    out = []
    for letter in letters:
        while True:
            kind = leaf.kind or rng.choice(KINDS)
            scene = rng.choice(by_kind[kind]) if by_kind[kind] else random_scene(rng, kind)
            if (asked := leaf.ask(scene, rng)) is not None:
                break
        question, right, wrongs, hint = asked
        rng.shuffle(wrongs)
        options = list(wrongs)
        options.insert(LETTERS.index(letter), right)
        out.append((scene, Choice(question, tuple(options), letter, hint, leaf.name, leaf.l2)))
    return out


def mmbench_prompt(choice: Choice) -> str:
    """The question as LLaVA's MMBench evaluation asks it (without the leading <image>)."""
    text = choice.question + "".join(
        f"\n{LETTERS[i]}. {option}" for i, option in enumerate(choice.options)
    )
    if choice.hint:
        text = choice.hint + "\n" + text
    return text + "\n" + MMBENCH_INSTRUCTION
