"""Language-only questions in the categories of Vicuna-80, with answers in one fixed phrasing
per template: the ShareGPT-style training conversations and the Vicuna-80 mini set's questions
and references come from here."""

from __future__ import annotations

import random
from collections.abc import Callable

from harness.data.synthetic.facts import ANIMALS, SIDES, countries, plural

VICUNA_CATEGORIES: dict[str, int] = {
    "generic": 10,
    "knowledge": 10,
    "roleplay": 10,
    "common-sense": 10,
    "fermi": 10,
    "counterfactual": 10,
    "writing": 10,
    "coding": 7,
    "math": 3,
}
SKILLS = (
    "time management",
    "public speaking",
    "writing",
    "cooking",
    "drawing",
    "memory",
    "sleep",
    "focus",
    "reading",
    "chess",
    "running",
    "singing",
    "gardening",
    "painting",
    "swimming",
    "typing",
    "spelling",
    "listening",
    "handwriting",
    "planning",
)
JOBS = {
    "baker": "bake fresh bread",
    "pilot": "fly planes across the sky",
    "teacher": "help children learn",
    "doctor": "care for sick people",
    "farmer": "grow food in the fields",
    "painter": "paint colorful pictures",
    "sailor": "sail ships across the sea",
    "chef": "cook tasty meals",
    "gardener": "look after plants and flowers",
    "builder": "build strong houses",
}
TOOLS = {
    "umbrella": "stay dry in the rain",
    "coat": "stay warm in the cold",
    "lamp": "see at night",
    "fridge": "keep food cold",
    "map": "find the way",
    "key": "open a door",
    "clock": "tell the time",
    "cup": "drink water",
    "pen": "write notes",
    "bus": "travel around town",
    "ladder": "reach high places",
    "broom": "sweep the floor",
    "bed": "sleep comfortably",
    "bridge": "cross a river",
    "boat": "travel on water",
    "oven": "bake food",
}
CODE_TASKS = {
    "returns the sum of two numbers": ("a, b", "a + b"),
    "returns the difference of two numbers": ("a, b", "a - b"),
    "returns the product of two numbers": ("a, b", "a * b"),
    "returns the larger of two numbers": ("a, b", "max(a, b)"),
    "returns the smaller of two numbers": ("a, b", "min(a, b)"),
    "checks whether a number is even": ("n", "n % 2 == 0"),
    "returns the square of a number": ("n", "n * n"),
    "reverses a string": ("text", "text[::-1]"),
}
FUNCTION_NAMES = ("solve", "compute", "helper", "calc", "answer", "result", "run", "apply")
Template = Callable[[random.Random, int], tuple[str, str]]


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def _generic(rng: random.Random, seed: int) -> tuple[str, str]:
    skill = rng.choice(SKILLS)
    ask = rng.choice(["How can I improve my {}?", "What are good ways to get better at {}?"])
    return (
        ask.format(skill),
        f"To improve your {skill}, practice a little every day, set one clear goal at a "
        f"time, and ask someone you trust for feedback on your {skill}.",
    )


def _knowledge(rng: random.Random, seed: int) -> tuple[str, str]:
    country, capital, language = rng.choice(countries(seed))
    animal = rng.choice(sorted(ANIMALS))
    return rng.choice(
        [
            (f"What is the capital of {country}?", f"The capital of {country} is {capital}."),
            (f"What language is spoken in {country}?", f"People in {country} speak {language}."),
            (f"How many legs does a {animal} have?", f"A {animal} has {ANIMALS[animal][0]} legs."),
        ]
    )


def _roleplay(rng: random.Random, seed: int) -> tuple[str, str]:
    job = rng.choice(sorted(JOBS))
    place = rng.choice(countries(seed))[0]
    return (
        f"Pretend you are {_a(job)} from {place}. How would you introduce yourself?",
        f"Hello! I am {_a(job)} from {place}. Every day I {JOBS[job]}, and I love my work.",
    )


def _common_sense(rng: random.Random, seed: int) -> tuple[str, str]:
    tool = rng.choice(sorted(TOOLS))
    ask = rng.choice(["Why do people use {}?", "What is {} for?"])
    return ask.format(_a(tool)), f"People use {_a(tool)} to {TOOLS[tool]}."


def _fermi(rng: random.Random, seed: int) -> tuple[str, str]:
    animal = rng.choice([a for a, v in sorted(ANIMALS.items()) if v[0]])
    n, legs = rng.randint(2, 12), ANIMALS[animal][0]
    return (
        f"How many legs do {n} {plural(animal)} have in total?",
        f"A {animal} has {legs} legs, so {n} {plural(animal)} have {n} x {legs} = {n * legs} legs "
        f"in total.",
    )


def _counterfactual(rng: random.Random, seed: int) -> tuple[str, str]:
    tool = rng.choice(sorted(TOOLS))
    ask = rng.choice(
        ["What would happen if there were no {}?", "Imagine a world without {}. What would change?"]
    )
    return (
        ask.format(_plural(tool)),
        f"Without {_plural(tool)}, it would be harder to {TOOLS[tool]}, so people would have to "
        f"find another way to {TOOLS[tool]}.",
    )


def _writing(rng: random.Random, seed: int) -> tuple[str, str]:
    if rng.random() < 0.5:
        color, shape = rng.choice(["red", "green", "blue", "yellow"]), rng.choice(sorted(SIDES))
        return (
            f"Write a short poem about a {color} {shape}.",
            f"A {color} {shape}, bright and small,\nwith {SIDES[shape]} sides, and that is all.",
        )
    country, capital, language = rng.choice(countries(seed))
    return (
        f"Write one sentence about {country}.",
        f"{country} is a country whose capital is {capital}, and its people speak {language}.",
    )


def _coding(rng: random.Random, seed: int) -> tuple[str, str]:
    task = rng.choice(sorted(CODE_TASKS))
    name = rng.choice(FUNCTION_NAMES)
    args, body = CODE_TASKS[task]
    return (
        f"Write a Python function named {name} that {task}.",
        f"Here is the function:\n```python\ndef {name}({args}):\n    return {body}\n```",
    )


def _math(rng: random.Random, seed: int) -> tuple[str, str]:
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    return rng.choice(
        [
            (f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."),
            (f"What is {a} times {b}?", f"{a} times {b} is {a * b}."),
            (
                f"Tom has {a} apples and buys {b} more. How many apples does he have now?",
                f"Tom has {a} apples and buys {b} more, so he has {a} + {b} = {a + b} apples now.",
            ),
        ]
    )


TEMPLATES: dict[str, Template] = {
    "generic": _generic,
    "knowledge": _knowledge,
    "roleplay": _roleplay,
    "common-sense": _common_sense,
    "fermi": _fermi,
    "counterfactual": _counterfactual,
    "writing": _writing,
    "coding": _coding,
    "math": _math,
}


def vicuna_questions(seed: int) -> list[tuple[str, str, str]]:
    """The 80 (category, question, reference answer) of the Vicuna-80 mini set, distinct."""
    rng = random.Random(f"{seed}-vicuna80")
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for category, count in VICUNA_CATEGORIES.items():
        while sum(c == category for c, _, _ in out) < count:
            question, answer = TEMPLATES[category](rng, seed)
            if question not in seen:
                seen.add(question)
                out.append((category, question, answer))
    return out


def chat_pairs(rng: random.Random, seed: int, exclude: set[str]) -> tuple[str, str]:
    """One training (question, answer) of a random category, never a held-out question."""
    categories = sorted(TEMPLATES)
    while True:
        question, answer = TEMPLATES[rng.choice(categories)](rng, seed)
        if question not in exclude:
            return question, answer
