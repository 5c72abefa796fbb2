"""Conversation datasets: LLaVA's JSON format and ShareGPT-style language-only conversations.

LLaVA's format: a JSON list of {id, image?, conversations: [{from: human|gpt, value}]}, images
named relative to an image folder. ShareGPT's: the same without images. Here they come from a
local file (JSON or JSONL); `harness.data.hub` reads them through `datasets` (a hub id or a
folder saved with save_to_disk). Bad input stops with one line naming the file and the item.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError

IMAGE_TOKEN = "<image>"
ROLE_ALIASES = {
    "human": "human",
    "user": "human",
    "gpt": "gpt",
    "assistant": "gpt",
    "chatgpt": "gpt",
    "bard": "gpt",
    "bing": "gpt",
}


@dataclass(frozen=True)
class ConversationSample:
    """One training conversation; `image` is a file path or None for language-only samples."""

    id: str
    messages: list[dict[str, str]] = field(hash=False)
    image: str | None = None

    @property
    def length(self) -> int:
        """Words of text, LLaVA's length for length-grouped batching."""
        return sum(len(m["value"].split()) for m in self.messages)


def _read_rows(path: Path) -> list[Any]:
    if not path.is_file():
        raise UserError(f"dataset file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(rows, list):
        raise UserError(f"{path}: expected a list of conversations, got {type(rows).__name__}")
    if not rows:
        raise UserError(f"{path}: the dataset is empty")
    return rows


def _messages(row: Any, where: str, *, image: bool) -> list[dict[str, str]]:
    """The turns of one item, roles normalised, strictly alternating human/gpt."""
    turns = row.get("conversations") if isinstance(row, dict) else None
    if not isinstance(turns, list) or not turns:
        raise UserError(f"{where}: no 'conversations' list")
    out = []
    for i, turn in enumerate(turns):
        role = ROLE_ALIASES.get(turn.get("from")) if isinstance(turn, dict) else None
        if role is None or not isinstance(turn.get("value"), str):
            raise UserError(f"{where}: turn {i} needs 'from' (human or gpt) and a string 'value'")
        out.append({"from": role, "value": turn["value"]})
    if out[0]["from"] == "gpt":
        out = out[1:]  # LLaVA skips a leading reply
    for i, turn in enumerate(out):
        expected = "human" if i % 2 == 0 else "gpt"
        if turn["from"] != expected:
            raise UserError(
                f"{where}: malformed turn order: turn {i} is from {turn['from']!r}, "
                f"expected {expected!r} (turns must alternate human, gpt)"
            )
    if not any(t["from"] == "gpt" for t in out):
        raise UserError(f"{where}: no assistant reply to train on")
    has_token = any(IMAGE_TOKEN in t["value"] for t in out)
    if image and not has_token:
        raise UserError(f"{where}: has an image but no {IMAGE_TOKEN} token in its turns")
    if not image and has_token:
        raise UserError(f"{where}: mentions {IMAGE_TOKEN} but has no image")
    return out


def _check_image(path: Path, where: str) -> None:
    """The file exists and its header decodes (a full decode happens when it is batched)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise UserError(f"{where}: image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.size  # noqa: B018 - reading the header is the check
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserError(f"{where}: image file {path} is corrupt: {exc}") from None


def llava_samples(
    rows: list[Any], source: str, image_folder: Path | None, *, check_images: bool = True
) -> list[ConversationSample]:
    """Rows in LLaVA's format -> samples (shared by the file and the `datasets` loaders)."""
    samples = []
    for index, row in enumerate(rows):
        item_id = str(row.get("id", index)) if isinstance(row, dict) else str(index)
        where = f"{source} item {index} (id {item_id!r})"
        image = row.get("image") if isinstance(row, dict) else None
        messages = _messages(row, where, image=image is not None)
        path = None
        if image is not None:
            if image_folder is None:
                raise UserError(f"{where}: has an image but no image folder was given")
            path = Path(image_folder) / str(image)
            if check_images:
                _check_image(path, where)
        samples.append(ConversationSample(item_id, messages, None if path is None else str(path)))
    if not samples:
        raise UserError(f"{source}: the dataset is empty")
    return samples


def load_llava_json(
    path: Path, image_folder: Path | None, *, check_images: bool = True
) -> list[ConversationSample]:
    """LLaVA's conversation JSON (or JSONL); images are looked up in `image_folder`."""
    path = Path(path)
    return llava_samples(_read_rows(path), str(path), image_folder, check_images=check_images)


def sharegpt_samples(rows: list[Any], source: str) -> list[ConversationSample]:
    samples = []
    for index, row in enumerate(rows):
        item_id = str(row.get("id", index)) if isinstance(row, dict) else str(index)
        where = f"{source} item {index} (id {item_id!r})"
        samples.append(ConversationSample(item_id, _messages(row, where, image=False), None))
    if not samples:
        raise UserError(f"{source}: the dataset is empty")
    return samples


def load_sharegpt(path: Path) -> list[ConversationSample]:
    """ShareGPT-style language-only conversations (JSON list or JSONL)."""
    path = Path(path)
    return sharegpt_samples(_read_rows(path), str(path))
