"""Stand-in pretraining material for the tiny foundation models: text for the tiny LLM (the
world's facts, captions, dialogues, letter-format practice) and labelled images for the tiny
vision tower."""

from __future__ import annotations

import random
from functools import lru_cache

from PIL import Image

from harness.data.synthetic.drills import drills, mmbench_text
from harness.data.synthetic.facts import all_facts
from harness.data.synthetic.language import QA_KINDS, caption, description
from harness.data.synthetic.mmlu import LETTERS, header, practice, render_item
from harness.data.synthetic.scenes import LABEL_CLASSES, random_scene, render, scene_labels
from harness.data.synthetic.talk import chat_pairs, vicuna_questions

PRETRAIN_SIZES = {
    "fact_rounds": 3,
    "qa_rounds": 32,
    "scenes": 1500,
    "dialogues": 1500,
    "chats": 1500,
    "practice_blocks": 300,
    "drills": 1200,
}


def _chat(turns: list[tuple[str, str]]) -> str:
    return " ".join(f"USER: {q} ASSISTANT: {a}" for q, a in turns)


@lru_cache(maxsize=4)
def _pretrain_text(seed: int) -> tuple[str, ...]:
    rng = random.Random(f"{seed}-pretrain")
    docs: list[str] = []
    statements = [s for fact in all_facts(seed) for s in fact.statements]
    for _ in range(PRETRAIN_SIZES["fact_rounds"]):
        rng.shuffle(statements)
        docs += [" ".join(statements[i : i + 8]) for i in range(0, len(statements), 8)]
    # The facts as the questions MMLU asks, answered in words (never with the test's options):
    # stating them only as sentences left question-form recall near chance (probe: 27.5%), and
    # 8 rounds in 300 steps left it at 28-33% (32 rounds in 450 steps: 43-51%, RESULTS.md).
    questions = [(fact.question, fact.answer) for fact in all_facts(seed)]
    for _ in range(PRETRAIN_SIZES["qa_rounds"]):
        rng.shuffle(questions)
        docs += [
            "\n\n".join(f"{q}\nAnswer: {a}" for q, a in questions[i : i + 4])
            for i in range(0, len(questions), 4)
        ]
    for _ in range(PRETRAIN_SIZES["scenes"]):
        scene = random_scene(rng)
        docs.append(caption(scene, rng) + " " + description(scene))
    for _ in range(PRETRAIN_SIZES["dialogues"]):
        scene = random_scene(rng)
        qas = QA_KINDS[rng.choice(["conv", "complex"])](scene, rng)
        picked = rng.sample(qas, min(len(qas), 2))
        docs.append(
            f"Picture: {description(scene)}\n" + _chat([(q.question, q.answer) for q in picked])
        )
    held_out = {question for _, question, _ in vicuna_questions(seed)}
    for _ in range(PRETRAIN_SIZES["chats"]):
        docs.append(_chat([chat_pairs(rng, seed, held_out) for _ in range(rng.randint(1, 3))]))
    by_subject: dict[str, list] = {}
    for subject, item in practice(seed, PRETRAIN_SIZES["practice_blocks"] * 4, "pretrain"):
        by_subject.setdefault(subject, []).append(item)
    for subject, items in sorted(by_subject.items()):
        rng.shuffle(items)  # letters are dealt in blocks of A-D: unshuffled, a block's last
        for i in range(0, len(items), 4):  # letter would follow from the first three
            block = "\n\n".join(render_item(item, with_answer=True) for item in items[i : i + 4])
            docs.append(header(subject) + block)
    lookups = drills(seed, 2 * PRETRAIN_SIZES["drills"], "pretrain")
    rng.shuffle(lookups)
    for i in range(0, PRETRAIN_SIZES["drills"], 4):
        block = "\n\n".join(render_item(item, with_answer=True) for item in lookups[i : i + 4])
        docs.append(header("matching options") + block)
    for item in lookups[PRETRAIN_SIZES["drills"] :]:
        docs.append(f"USER: {mmbench_text(item)} ASSISTANT: {LETTERS[item[2]]}")
    rng.shuffle(docs)
    return tuple(docs)


def pretrain_text(seed: int = 0) -> list[str]:
    """Documents for pretraining the tiny LLM (and training its tokenizer); deterministic."""
    return list(_pretrain_text(seed))


def tower_samples(
    n: int, image_size: int, seed: int
) -> tuple[list[Image.Image], dict[str, list[int]]]:
    """`n` scenes drawn at `image_size` px and their labels (keys and classes: LABEL_CLASSES)."""
    rng = random.Random(f"{seed}-tower")
    images: list[Image.Image] = []
    labels: dict[str, list[int]] = {key: [] for key in LABEL_CLASSES}
    for _ in range(n):
        scene = random_scene(rng)
        images.append(render(scene, image_size))
        for key, value in scene_labels(scene).items():
            labels[key].append(value)
    return images, labels
