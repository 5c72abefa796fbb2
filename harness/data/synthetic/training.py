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
from harness.data.synthetic.mmlu import LETTERS, practice
from harness.data.synthetic.scenes import random_scene
from harness.data.synthetic.talk import chat_pairs, vicuna_questions

# How the MMBench-format practice replies: "option" (the right option's text) or "letter".
# Measured: the tiny LLMs do not learn the option-to-letter lookup within the default run's
# budget (400 steps x 32 answer-only lookup drills left the loss at ln 4), so letter replies
# teach a constant letter, which CircularEval scores 0. MMBench's extraction ladder maps an
# option's text to its letter (step 2), so option replies let the benchmark measure vision.
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
    rng.shuffle(instruct)
    write_json(root / "stage2" / "llava_instruct.json", instruct)

    held_out = {question for _, question, _ in vicuna_questions(seed)}
    chats = []
    for index in range(sizes["chats"]):
        turns = []
        for _ in range(rng.randint(1, 3)):
            turns += _turn(*chat_pairs(rng, seed, held_out))
        chats.append({"id": f"chat_{index:05d}", "conversations": turns})
    text_items = [item for _, item in practice(seed, sizes["text_mc"], "chat")]
    text_items += drills(seed, sizes["drills"], "chat")
    for index, item in enumerate(text_items):
        turns = _turn(mmbench_text(item), LETTERS[item[2]])
        chats.append({"id": f"choice_{index:05d}", "conversations": turns})
    rng.shuffle(chats)
    write_json(root / "stage2" / "sharegpt.json", chats)
    return {
        "images": len(scenes),
        "captions": len(captions),
        "instruct": len(instruct),
        "sharegpt": len(chats),
    }
