"""The training data: stage-1 caption pairs, stage-2 instruction conversations (LLaVA's three
kinds plus MMBench-format letter practice) and language-only ShareGPT conversations."""

from __future__ import annotations

import random
from pathlib import Path

from harness.data.synthetic.choices import (
    LEAVES,
    balanced_choices,
    mmbench_prompt,
)
from harness.data.synthetic.drills import drills, mmbench_text
from harness.data.synthetic.files import write_json, write_png
from harness.data.synthetic.language import QA_KINDS, caption
from harness.data.synthetic.mmlu import LETTERS, header, practice, render_item
from harness.data.synthetic.scenes import random_scene
from harness.data.synthetic.talk import chat_pairs, vicuna_questions

# How the MMBench-format practice replies: "option" (the right option's text) or "letter".
# Measured before the foundations learned the lookup in pretraining: stage 2 alone does not
# teach the option-to-letter lookup (400 steps x 32 answer-only lookup drills left the loss at
# ln 4), so letter replies taught a constant letter, which CircularEval scores 0. MMBench's
# extraction ladder maps an option's text to its letter (step 2), so option replies let the
# benchmark measure vision.
MC_REPLY = "option"

TRAIN_SIZES = {
    "small": {
        "images": 2400,
        "conv": 1000,
        "detail": 600,
        "complex": 900,
        "mc_per_leaf": 168,
        "chats": 800,
        "text_mc": 240,
        "drills": 400,
    },
    "medium": {
        "images": 7200,
        "conv": 3000,
        "detail": 1800,
        "complex": 2700,
        "mc_per_leaf": 504,
        "chats": 2400,
        "text_mc": 720,
        "drills": 1200,
    },
}


def _turn(human: str, gpt: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]


def mmlu_practice(seed: int, count: int, stream: str) -> list[tuple[str, str]]:
    """`count` (prompt, answer letter) text items in MMLU's layout: its description line, 0-2
    solved items of the subject, then a practice item up to "Answer:". Letters balanced as
    `practice` deals them; no item repeats a held-out one."""
    rng = random.Random(f"{seed}-mmlu-layout-{stream}")
    shots: dict[str, list] = {}
    for subject, item in practice(seed, 2 * count, f"{stream}-shots"):
        shots.setdefault(subject, []).append(item)
    out = []
    for subject, item in practice(seed, count, stream):
        solved = rng.sample(shots[subject], rng.randint(0, 2))
        prompt = header(subject) + "".join(render_item(s, True) + "\n\n" for s in solved)
        out.append((prompt + render_item(item, with_answer=False), LETTERS[item[2]]))
    return out


def write_training(root: Path, seed: int, scale: str) -> dict[str, int]:
    sizes = TRAIN_SIZES[scale]
    rng = random.Random(f"{seed}-train")
    scenes = [random_scene(rng) for _ in range(sizes["images"])]
    names = [f"train_{i:05d}.png" for i in range(len(scenes))]
    for name, scene in zip(names, scenes, strict=True):
        write_png(root / "images" / name, scene)
    captions = [
        {"id": name[:-4], "image": name, "conversations": _turn("<image>", caption(scene, rng))}
        for name, scene in zip(names, scenes, strict=True)
    ]
    write_json(root / "stage1" / "captions.json", captions)

    instruct = []
    for kind in ("conv", "detail", "complex"):
        for index in range(sizes[kind]):
            image = rng.randrange(len(scenes))
            qas = QA_KINDS[kind](scenes[image], rng)
            picked = (
                rng.sample(qas, min(len(qas), rng.randint(1, 3)))
                if kind == "conv"
                else [rng.choice(qas)]
            )
            turns = []
            for turn, qa in enumerate(picked):
                turns += _turn(("<image>\n" if turn == 0 else "") + qa.question, qa.answer)
            instruct.append(
                {"id": f"{kind}_{index:05d}", "image": names[image], "conversations": turns}
            )
    image_of = {scene: name for name, scene in zip(names, scenes, strict=True)}
    for leaf in LEAVES:
        for index, (scene, choice) in enumerate(
            balanced_choices(leaf, sizes["mc_per_leaf"], rng, pool=scenes)
        ):
            prompt = "<image>\n" + mmbench_prompt(choice)
            reply = (
                choice.options[LETTERS.index(choice.answer)]
                if MC_REPLY == "option"
                else choice.answer
            )
            instruct.append(
                {
                    "id": f"mc_{leaf.name}_{index:05d}",
                    "image": image_of[scene],
                    "conversations": _turn(prompt, reply),
                }
            )
    # Text-only letter practice in MMLU's layout (LLaVA's instruction data has text-only samples
    # too): instruction tuning on image conversations alone took the tiny LLMs' MMLU from 49.5
    # (foundation) to 26.0-40.5 (bench/RESULTS.md, "tiny_study.py").
    for index, (prompt, letter) in enumerate(mmlu_practice(seed, sizes["text_mc"], "instruct")):
        instruct.append({"id": f"mmlu_{index:05d}", "conversations": _turn(prompt, letter)})
    rng.shuffle(instruct)
    write_json(root / "stage2" / "llava_instruct.json", instruct)

    held_out = {question for _, question, _ in vicuna_questions(seed)}
    chats = []
    for index in range(sizes["chats"]):
        turns = []
        for _ in range(rng.randint(1, 3)):
            turns += _turn(*chat_pairs(rng, seed, held_out))
        chats.append({"id": f"chat_{index:05d}", "conversations": turns})
    letters = [
        (mmbench_text(item), LETTERS[item[2]]) for item in drills(seed, sizes["drills"], "chat")
    ]
    letters += mmlu_practice(seed, sizes["text_mc"], "chat")
    for index, (prompt, letter) in enumerate(letters):
        chats.append({"id": f"choice_{index:05d}", "conversations": _turn(prompt, letter)})
    rng.shuffle(chats)
    write_json(root / "stage2" / "sharegpt.json", chats)
    return {
        "images": len(scenes),
        "captions": len(captions),
        "instruct": len(instruct),
        "sharegpt": len(chats),
    }
