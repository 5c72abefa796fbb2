"""A stage's training data from a DataMixSpec: captions (stage 1), or instructions mixed with
language-only conversations at a ratio (stage 2, the paper's "data mixing"), seeded.

Sources: `synthetic` (the generated world, same files as the official data), `local` (a JSON or
JSONL file; images are found beside it or in an `images/` folder next to it or one level up),
`hub` (a dataset id or a save_to_disk folder, through `datasets`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Literal

from harness.data.conversations import ConversationSample, load_llava_json, load_sharegpt
from harness.data.hub import load_hub_llava, load_hub_sharegpt
from harness.errors import UserError
from harness.specs import DataMixSpec, DataSource

SYNTHETIC_FILES = {
    "captions": "stage1/captions.json",
    "instructions": "stage2/llava_instruct.json",
    "language": "stage2/sharegpt.json",
}
Role = Literal["captions", "instructions", "language"]


def image_folder_for(json_file: Path) -> Path:
    """The folder the file's image names are relative to (LLaVA keeps them apart)."""
    try:
        rows = json.loads(json_file.read_text(encoding="utf-8"))
        first = next(row["image"] for row in rows if isinstance(row, dict) and row.get("image"))
    except (OSError, ValueError, StopIteration, TypeError, KeyError):
        return json_file.parent
    for folder in (
        json_file.parent,
        json_file.parent / "images",
        json_file.parent.parent,
        json_file.parent.parent / "images",
    ):
        if (folder / first).is_file():
            return folder
    return json_file.parent


def source_file(source: DataSource, role: Role) -> Path:
    """The file a synthetic or local source names for `role`."""
    if source.kind == "synthetic":
        from harness.data.synthetic import synthetic_root

        return synthetic_root(seed=source.seed, scale=source.scale) / SYNTHETIC_FILES[role]
    if not source.path:
        raise UserError(f"a {source.kind} data source for {role} needs a path")
    return Path(source.path).expanduser()


def load_source(source: DataSource, role: Role) -> list[ConversationSample]:
    """The samples of one source, in file order."""
    if source.kind == "hub":
        if not source.path:
            raise UserError(f"a hub data source for {role} needs a dataset id")
        if role == "language":
            return load_hub_sharegpt(source.path, split=source.split)
        return load_hub_llava(source.path, split=source.split)
    path = source_file(source, role)
    if role == "language":
        return load_sharegpt(path)
    return load_llava_json(path, image_folder_for(path))


def mix_language(
    instructions: list[ConversationSample],
    language: list[ConversationSample],
    ratio: float,
    seed: int,
) -> list[ConversationSample]:
    """Instructions plus round(ratio x len) language-only samples, shuffled with `seed`.

    Language samples are drawn without replacement while they last, then cycle in a fresh order.
    """
    if ratio < 0:
        raise UserError(f"language_ratio must be >= 0, got {ratio}")
    rng = random.Random(seed)
    wanted = round(ratio * len(instructions))
    drawn: list[ConversationSample] = []
    while len(drawn) < wanted and language:
        order = list(language)
        rng.shuffle(order)
        drawn += order[: wanted - len(drawn)]
    mixed = list(instructions) + drawn
    rng.shuffle(mixed)
    return mixed


def build_mix(mix: DataMixSpec, stage: int) -> list[ConversationSample]:
    """Stage 1: the captions, shuffled. Stage 2: instructions + language-only at the ratio."""
    if stage == 1:
        samples = load_source(mix.captions, "captions")
        random.Random(mix.seed).shuffle(samples)
        return samples
    if stage != 2:
        raise UserError(f"stage must be 1 or 2, got {stage}")
    instructions = load_source(mix.instructions, "instructions")
    language_source = mix.language
    if language_source is None and mix.language_ratio > 0:
        if mix.instructions.kind != "synthetic":
            raise UserError("language_ratio > 0 needs a `language` data source")
        language_source = mix.instructions
    language = load_source(language_source, "language") if language_source else []
    return mix_language(instructions, language, mix.language_ratio, mix.seed)
