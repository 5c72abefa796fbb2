"""The MMLU mini set (cais/mmlu's layout) and the letter-format practice drawn from the same
facts. Letters are dealt in shuffled blocks of A-D, so every prefix of a multiple of four items
is exactly balanced; practice never repeats a test question with the same options."""

from __future__ import annotations

import random
from pathlib import Path

from harness.data.synthetic.facts import SUBJECTS, Fact, all_facts, options_for
from harness.data.synthetic.files import write_mmlu_parquet

LETTERS = "ABCD"
TEST_SIZES = {  # per subject; small is a prefix of medium
    "small": {
        "elementary_mathematics": 64,
        "geography": 64,
        "animals": 36,
        "shapes_and_colors": 36,
    },
    "medium": {
        "elementary_mathematics": 160,
        "geography": 160,
        "animals": 96,
        "shapes_and_colors": 96,
    },
}
Item = tuple[str, tuple[str, ...], int]  # question, four choices, index of the answer


def _letters(count: int, rng: random.Random) -> list[int]:
    out: list[int] = []
    while len(out) < count:
        block = [0, 1, 2, 3]
        rng.shuffle(block)
        out += block
    return out[:count]


def _items(facts: list[Fact], count: int, rng: random.Random, avoid: set[Item]) -> list[Item]:
    order: list[Fact] = []
    out: list[Item] = []
    for letter in _letters(count, rng):
        while True:
            if not order:
                order = list(facts)
                rng.shuffle(order)
            fact = order.pop()
            item = (fact.question, tuple(options_for(fact, letter, rng)), letter)
            if item not in avoid:
                break
        out.append(item)
    return out


def splits(seed: int) -> dict[str, dict[str, list[Item]]]:
    """subject -> {dev (5), validation (8), test (medium size)}; small uses a test prefix."""
    facts = all_facts(seed)
    out = {}
    for subject in SUBJECTS:
        rng = random.Random(f"{seed}-mmlu-{subject}")
        mine = [f for f in facts if f.subject == subject]
        test = _items(mine, TEST_SIZES["medium"][subject], rng, set())
        dev = _items(mine, 5, rng, set(test))
        validation = _items(mine, 8, rng, set(test) | set(dev))
        out[subject] = {"dev": dev, "validation": validation, "test": test}
    return out


def practice(seed: int, count: int, stream: str) -> list[tuple[str, Item]]:
    """`count` (subject, item) for training, none equal to a dev/validation/test item."""
    held_out = {
        item for split in splits(seed).values() for items in split.values() for item in items
    }
    rng = random.Random(f"{seed}-mmlu-practice-{stream}")
    facts = list(all_facts(seed))
    items = _items(facts, count, rng, held_out)
    subject_of = {f.question: f.subject for f in facts}
    return [(subject_of[item[0]], item) for item in items]


def render_item(item: Item, with_answer: bool) -> str:
    """lm-evaluation-harness's mmlu doc_to_text, plus ` X` when the answer is shown."""
    question, choices, answer = item
    text = question.strip() + "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(choices))
    return text + "\nAnswer:" + (f" {LETTERS[answer]}" if with_answer else "")


def header(subject: str) -> str:
    topic = subject.replace("_", " ")
    return f"The following are multiple choice questions (with answers) about {topic}.\n\n"


def write_mmlu(root: Path, seed: int, scale: str) -> int:
    """Write mmlu/<subject>/{dev,validation,test}-00000-of-00001.parquet and a dataset card."""
    configs = []
    total = 0
    for subject, split_items in splits(seed).items():
        for split, items in split_items.items():
            if split == "test":
                items = items[: TEST_SIZES[scale][subject]]
                total += len(items)
            rows = [
                {"question": q, "subject": subject, "choices": list(c), "answer": a}
                for q, c, a in items
            ]
            write_mmlu_parquet(root / subject / f"{split}-00000-of-00001.parquet", rows)
        configs.append((subject, subject))
    configs.insert(0, ("all", "*"))
    card = "---\nconfigs:\n" + "".join(
        f"- config_name: {name}\n  data_files:\n"
        + "".join(
            f'  - split: {split}\n    path: "{folder}/{split}-*"\n'
            for split in ("test", "validation", "dev")
        )
        for name, folder in configs
    )
    card += "---\n# Synthetic MMLU mini set (facts of the synthetic world)\n"
    (root / "README.md").write_text(card, encoding="utf-8")
    return total
