"""Lookup rows: MMLU-layout blocks of solved items that also say where each answer's option text
lies, for the attention-supervised part of the tiny LLM's pretraining.

A tiny LLM trained on letter-format text alone stays at chance for over a thousand steps: the
step from "the answer is Sokur" to "so the letter is C" needs an attention head that finds the
option holding the answer, and plain next-token loss gives that head almost no gradient until
it already works. Marking the option's characters lets pretraining supervise that head directly
(harness.model.pretrain.lookup_loss). Rows hold MMLU practice items (the facts' questions with
other options than any held-out item) and lookup drills ("Which option says X?")."""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.data.synthetic.drills import drills
from harness.data.synthetic.mmlu import LETTERS, Item, header, practice

MOST_ITEMS = 4  # items per row: 1-4, so an item's distance from the row's start varies


@dataclass(frozen=True)
class Mark:
    """One solved item of a row: where its answer letter (" C") starts, and the character span
    of the option text that letter names."""

    answer: int
    option_start: int
    option_end: int


@dataclass(frozen=True)
class LookupRow:
    """A row's text, its solved items' marks, and every option's (letter, text start, text end)
    character positions."""

    text: str
    marks: tuple[Mark, ...]
    options: tuple[tuple[int, int, int], ...]


def render_marked(topic: str, items: list[Item]) -> LookupRow:
    """MMLU's description line and `items` solved (render_item's layout), with their marks."""
    text = header(topic)
    marks, options = [], []
    for n, (question, choices, answer) in enumerate(items):
        text += ("\n\n" if n else "") + question.strip()
        span = (0, 0)
        for i, choice in enumerate(choices):
            text += f"\n{LETTERS[i]}. "
            start = len(text)
            options.append((start - 3, start, start + len(choice)))
            if i == answer:
                span = (start, start + len(choice))
            text += choice
        text += "\nAnswer:"
        marks.append(Mark(len(text), *span))
        text += f" {LETTERS[answer]}"
    return LookupRow(text, tuple(marks), tuple(options))


def lookup_rows(
    seed: int, count: int, drills_first: float = 1.0, drills_last: float = 0.5
) -> list[LookupRow]:
    """`count` rows: drills, then more and more practice on the facts (one subject a row,
    subjects drawn by how many items they have). The share of drills falls linearly from
    `drills_first` to `drills_last`: the lookup forms reliably on drills, whose answer is in
    the question, and then learns to take its answer from recall (measured: a constant half of
    drills left it unformed in one build of two)."""
    rng = random.Random(f"{seed}-lookup-rows")
    by_subject: dict[str, list[Item]] = {}
    for subject, item in practice(seed, count * MOST_ITEMS, "lookup"):
        by_subject.setdefault(subject, []).append(item)
    facts = sorted(by_subject.items())
    drill_items = drills(seed, count * MOST_ITEMS, "lookup")
    for _, items in [*facts, ("", drill_items)]:  # letters are dealt in blocks of A-D: unshuffled,
        rng.shuffle(items)  # a row's last letter would follow from the ones before it
    rows = []
    for n in range(count):
        share = drills_first + (drills_last - drills_first) * n / count
        if rng.random() < share:
            topic, items = "matching options", drill_items
        else:
            topic, items = rng.choices(facts, [len(items) for _, items in facts])[0]
        shown = [items.pop() for _ in range(min(len(items), rng.randint(1, MOST_ITEMS)))]
        rows.append(render_marked(topic, shown))
    return rows
