"""Letter-lookup drills: "Which option says X?" with X among the options. They teach the one
step every letter-format benchmark needs (from an option's content to its letter) without any
knowledge or vision, which a tiny model learns far sooner than the full task."""

from __future__ import annotations

import random

from harness.data.synthetic.choices import LETTERS, MMBENCH_INSTRUCTION
from harness.data.synthetic.facts import all_facts
from harness.data.synthetic.scenes import COLORS, REGIONS, SHAPES, WORDS

Item = tuple[str, tuple[str, ...], int]


def option_pools(seed: int) -> list[list[str]]:
    """Groups of same-kind answers (colours, regions, ... each fact subject's answers)."""
    answers: dict[str, set[str]] = {}
    for fact in all_facts(seed):
        answers.setdefault(fact.subject, set()).update(fact.pool)
    pools = [sorted(COLORS), list(REGIONS), list(SHAPES), list(WORDS)]
    pools += [sorted(pool) for _, pool in sorted(answers.items())]
    return [pool for pool in pools if len(pool) >= 4]


def drills(seed: int, count: int, stream: str) -> list[Item]:
    """`count` drills with 4 options; letters dealt in shuffled blocks of A-D (balanced)."""
    rng = random.Random(f"{seed}-drills-{stream}")
    pools = option_pools(seed)
    out: list[Item] = []
    while len(out) < count:
        block = [0, 1, 2, 3]
        rng.shuffle(block)
        for letter in block:
            options = rng.sample(rng.choice(pools), 4)
            target = options[letter]
            out.append((f"Which option says {target}?", tuple(options), letter))
    return out[:count]


def mmbench_text(item: Item) -> str:
    """A drill (or any 4-option text item) as MMBench's prompt, without an image."""
    question, options, _ = item
    lines = "".join(f"\n{LETTERS[i]}. {option}" for i, option in enumerate(options))
    return f"{question}{lines}\n{MMBENCH_INSTRUCTION}"
