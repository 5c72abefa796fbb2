"""The world's knowledge: arithmetic, invented countries (drawn from the seed), animals, shapes
and colours. The LLM's pretraining text states every fact; the MMLU mini set asks about them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

ANIMALS: dict[str, tuple[int, str, str]] = {  # legs, sound, young
    "cow": (4, "moo", "calf"),
    "dog": (4, "woof", "puppy"),
    "cat": (4, "meow", "kitten"),
    "horse": (4, "neigh", "foal"),
    "sheep": (4, "baa", "lamb"),
    "pig": (4, "oink", "piglet"),
    "duck": (2, "quack", "duckling"),
    "hen": (2, "cluck", "chick"),
    "goose": (2, "honk", "gosling"),
    "frog": (4, "croak", "tadpole"),
    "lion": (4, "roar", "cub"),
    "bee": (6, "buzz", "larva"),
    "spider": (8, "", "spiderling"),
    "snake": (0, "hiss", "snakelet"),
}
IRREGULAR_PLURALS = {"goose": "geese", "sheep": "sheep"}
SIDES = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6, "octagon": 8, "circle": 0}
MIXES = {
    ("red", "blue"): "purple",
    ("red", "yellow"): "orange",
    ("blue", "yellow"): "green",
    ("red", "white"): "pink",
    ("black", "white"): "gray",
}
THING_COLORS = {
    "the sky": "blue",
    "grass": "green",
    "a banana": "yellow",
    "snow": "white",
    "coal": "black",
    "a tomato": "red",
    "a carrot": "orange",
    "a lemon": "yellow",
    "a leaf": "green",
    "a cloud": "white",
}
SUBJECTS = ("elementary_mathematics", "geography", "animals", "shapes_and_colors")
_ONSETS = ("b", "d", "k", "l", "m", "n", "r", "s", "t", "v", "z", "br", "dr", "kr", "st", "th")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "n", "r", "l", "s", "th", "nd", "rk")


@dataclass(frozen=True)
class Fact:
    """One fact: an MMLU question about it, its answer, the options it is confused with, and
    the sentences that state it."""

    subject: str
    question: str
    answer: str
    pool: tuple[str, ...]
    statements: tuple[str, ...]


def plural(animal: str) -> str:
    return IRREGULAR_PLURALS.get(animal, animal + "s")


def _name(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(_CODAS)).capitalize()


@lru_cache(maxsize=8)
def countries(seed: int) -> tuple[tuple[str, str, str], ...]:
    """24 invented countries of this seed's world: (country, capital, language)."""
    rng = random.Random(f"{seed}-countries")
    names: list[str] = []
    while len(names) < 24 + 24 + 8:
        name = _name(rng, 2)
        if name not in names:
            names.append(name)
    languages = [name + "ish" for name in names[48:]] * 3
    rng.shuffle(languages)
    return tuple((names[i], names[24 + i], languages[i]) for i in range(24))


def _arithmetic() -> list[Fact]:
    out = []
    for a in range(1, 10):
        for b in range(1, 10):
            out.append(
                Fact(
                    SUBJECTS[0],
                    f"What is {a} + {b}?",
                    str(a + b),
                    tuple(str(v) for v in range(2, 19)),
                    (
                        f"{a} plus {b} is {a + b}.",
                        f"{a} + {b} = {a + b}.",
                        f"The sum of {a} and {b} is {a + b}.",
                    ),
                )
            )
    for a in range(2, 10):
        for b in range(2, 10):
            pool = tuple(sorted({str(x * y) for x in range(2, 10) for y in range(2, 10)}))
            out.append(
                Fact(
                    SUBJECTS[0],
                    f"What is {a} times {b}?",
                    str(a * b),
                    pool,
                    (
                        f"{a} times {b} is {a * b}.",
                        f"{a} x {b} = {a * b}.",
                        f"The product of {a} and {b} is {a * b}.",
                    ),
                )
            )
    return out


def _geography(seed: int) -> list[Fact]:
    table = countries(seed)
    capitals = tuple(c[1] for c in table)
    names = tuple(c[0] for c in table)
    languages = tuple(sorted({c[2] for c in table}))
    out = []
    for country, capital, language in table:
        capital_says = (
            f"The capital of {country} is {capital}.",
            f"{capital} is the capital of {country}.",
        )
        out.append(
            Fact(SUBJECTS[1], f"What is the capital of {country}?", capital, capitals, capital_says)
        )
        out.append(
            Fact(
                SUBJECTS[1],
                f"{capital} is the capital of which country?",
                country,
                names,
                capital_says,
            )
        )
        out.append(
            Fact(
                SUBJECTS[1],
                f"Which language is spoken in {country}?",
                language,
                languages,
                (f"People in {country} speak {language}.", f"{language} is spoken in {country}."),
            )
        )
    return out


def _animals() -> list[Fact]:
    legs = tuple(sorted({str(v[0]) for v in ANIMALS.values()}))
    sounds = tuple(sorted({v[1] for v in ANIMALS.values() if v[1]}))  # the spider makes none
    young = tuple(sorted({v[2] for v in ANIMALS.values()}))
    out = []
    for animal, (n, sound, baby) in ANIMALS.items():
        out.append(
            Fact(
                SUBJECTS[2],
                f"How many legs does a {animal} have?",
                str(n),
                legs,
                (f"A {animal} has {n} legs.", f"The {animal} walks on {n} legs."),
            )
        )
        if sound:
            out.append(
                Fact(
                    SUBJECTS[2],
                    f"What sound does a {animal} make?",
                    sound,
                    sounds,
                    (f"A {animal} says {sound}.", f"The sound a {animal} makes is {sound}."),
                )
            )
        out.append(
            Fact(
                SUBJECTS[2],
                f"What is a young {animal} called?",
                baby,
                young,
                (f"A young {animal} is called a {baby}.", f"A baby {animal} is a {baby}."),
            )
        )
    return out


def _shapes_and_colors() -> list[Fact]:
    sides = tuple(sorted({str(v) for v in SIDES.values()}))
    colors = tuple(sorted(set(MIXES.values()) | set(THING_COLORS.values()) | {"red", "blue"}))
    out = [
        Fact(
            SUBJECTS[3],
            f"How many sides does a {shape} have?",
            str(n),
            sides,
            (f"A {shape} has {n} sides.", f"The {shape} is a shape with {n} sides."),
        )
        for shape, n in SIDES.items()
    ]
    out += [
        Fact(
            SUBJECTS[3],
            f"What color do you get when you mix {a} and {b}?",
            c,
            colors,
            (f"Mixing {a} and {b} gives {c}.", f"{a.capitalize()} and {b} make {c}."),
        )
        for (a, b), c in MIXES.items()
    ]
    out += [
        Fact(
            SUBJECTS[3],
            f"What color is {thing}?",
            c,
            colors,
            (f"{thing.capitalize()} is {c}.", f"The color of {thing} is {c}."),
        )
        for thing, c in THING_COLORS.items()
    ]
    return out


@lru_cache(maxsize=8)
def all_facts(seed: int) -> tuple[Fact, ...]:
    """Every fact of the world, in a fixed order."""
    return tuple(_arithmetic() + _geography(seed) + _animals() + _shapes_and_colors())


def options_for(fact: Fact, letter_index: int, rng: random.Random) -> list[str]:
    """Four options with the right answer at `letter_index` and three distinct distractors."""
    wrongs = rng.sample([p for p in fact.pool if p != fact.answer], 3)
    wrongs.insert(letter_index, fact.answer)
    return wrongs
