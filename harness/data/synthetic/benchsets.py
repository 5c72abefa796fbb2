"""The benchmark mini sets in their official layouts: LLaVA-Bench, MM-Vet, MMBench, Vicuna-80.
Their images are fresh scenes (never in the training data) and their references use exactly
the phrasing the instruction data teaches."""

from __future__ import annotations

import base64
import random
from pathlib import Path

from harness.data.synthetic.choices import LEAVES, balanced_choices
from harness.data.synthetic.files import write_json, write_jsonl, write_png, write_tsv
from harness.data.synthetic.language import QA_KINDS, description
from harness.data.synthetic.scenes import png_bytes, random_scene, render
from harness.data.synthetic.talk import vicuna_questions
from harness.support.hashing import sha256_bytes

LLAVA_BENCH_SIZES = {
    "small": (24, {"conv": 17, "detail": 15, "complex": 28}),
    "medium": (48, {"conv": 34, "detail": 30, "complex": 56}),
}
# images, questions: the official set's 200 and 218 at both scales. Evaluating it takes seconds,
# and with 80 questions twice the standard error of a margin over the shuffled-image control
# was about 8 points, more than most margins.
MM_VET_SIZES = {"small": (200, 218), "medium": (200, 218)}
MMBENCH_PER_LEAF = {"small": 12, "medium": 36}
MMBENCH_COLUMNS = [
    "index",
    "question",
    "hint",
    "A",
    "B",
    "C",
    "D",
    "answer",
    "category",
    "image",
    "source",
    "l2-category",
    "split",
]


def _answer_id(*parts: object) -> str:
    return sha256_bytes("|".join(map(str, parts)))[:22]


def write_llava_bench(root: Path, seed: int, scale: str) -> int:
    rng = random.Random(f"{seed}-llava-bench")
    n_images, per_category = LLAVA_BENCH_SIZES[scale]
    scenes = [random_scene(rng) for _ in range(n_images)]
    asked: list[tuple[int, str, object]] = []
    slot = 0
    for category, count in per_category.items():
        for _ in range(count):
            image = slot % n_images
            slot += 1
            taken = {qa.question for i, _, qa in asked if i == image}
            options = [
                qa for qa in QA_KINDS[category](scenes[image], rng) if qa.question not in taken
            ]
            asked.append((image, category, rng.choice(options)))
    asked.sort(key=lambda entry: entry[0])
    questions, answers = [], []
    for qid, (image, category, qa) in enumerate(asked):
        name = f"{image + 1:03d}.png"
        questions.append(
            {"image": name, "text": qa.question, "category": category, "question_id": qid}
        )
        answers.append(
            {
                "question_id": qid,
                "prompt": qa.question,
                "text": qa.answer,
                "answer_id": _answer_id(seed, "llava-bench", qid),
                "model_id": "gpt-4-0314",
                "metadata": {},
            }
        )
    context = []
    for image, scene in enumerate(scenes):
        name = f"{image + 1:03d}.png"
        write_png(root / "images" / name, scene)
        context.append({"id": f"{image + 1:03d}", "image": name, "caption": description(scene)})
    write_jsonl(root / "questions.jsonl", questions)
    write_jsonl(root / "context.jsonl", context)
    write_jsonl(root / "answers_gpt4.jsonl", answers)
    return len(questions)


MM_VET_CAPABILITIES = ("rec", "ocr", "know", "gen", "spat", "math")


def _mm_vet_candidates(scene, rng: random.Random, capability: str) -> list:
    qas = [qa for kind in ("conv", "complex", "detail") for qa in QA_KINDS[kind](scene, rng)]
    return [qa for qa in qas if capability in qa.capabilities]


def write_mm_vet(root: Path, seed: int, scale: str) -> int:
    """Questions take the six capabilities in turn, so each has a score of its own."""
    rng = random.Random(f"{seed}-mm-vet")
    n_images, n_questions = MM_VET_SIZES[scale]
    scenes: list = []
    data, asked = {}, set()
    for index in range(n_questions):
        capability = MM_VET_CAPABILITIES[index % len(MM_VET_CAPABILITIES)]
        while True:
            fresh = len(scenes) < n_images
            image = len(scenes) if fresh else rng.randrange(n_images)
            scene = random_scene(rng) if fresh else scenes[image]
            options = [
                qa
                for qa in _mm_vet_candidates(scene, rng, capability)
                if (image, qa.question) not in asked
            ]
            if options:
                break
        if fresh:
            scenes.append(scene)
        qa = rng.choice(options)
        asked.add((image, qa.question))
        data[f"v1_{index}"] = {
            "imagename": f"v1_{image}.png",
            "capability": list(qa.capabilities),
            "question": qa.question,
            "answer": qa.key,
        }
    for image, scene in enumerate(scenes):
        write_png(root / "images" / f"v1_{image}.png", scene)
    write_json(root / "mm-vet.json", data)
    return len(data)


def write_mmbench(root: Path, seed: int, scale: str) -> int:
    rng = random.Random(f"{seed}-mmbench")
    rows = []
    for leaf in LEAVES:
        for scene, choice in balanced_choices(leaf, MMBENCH_PER_LEAF[scale], rng):
            options = list(choice.options) + [""] * (4 - len(choice.options))
            image = base64.b64encode(png_bytes(render(scene))).decode("ascii")
            rows.append(
                [
                    len(rows),
                    choice.question,
                    choice.hint,
                    *options,
                    choice.answer,
                    choice.category,
                    image,
                    "synthetic",
                    choice.l2_category,
                    "dev",
                ]
            )
    write_tsv(root / "mmbench_dev_en.tsv", MMBENCH_COLUMNS, rows)
    return len(rows)


def write_vicuna(root: Path, seed: int) -> int:
    questions, references = [], []
    for qid, (category, question, answer) in enumerate(vicuna_questions(seed), start=1):
        questions.append({"question_id": qid, "category": category, "turns": [question]})
        references.append(
            {
                "question_id": qid,
                "answer_id": _answer_id(seed, "vicuna", qid),
                "model_id": "gpt-4",
                "choices": [{"index": 0, "turns": [answer]}],
            }
        )
    write_jsonl(root / "question.jsonl", questions)
    write_jsonl(root / "reference_answer" / "gpt-4.jsonl", references)
    return len(questions)
