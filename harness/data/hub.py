"""Conversation datasets through `datasets`: a hub id, or a folder written by save_to_disk.

Rows use the same fields as the JSON files. Images are file names under `image_folder`, or,
when the dataset embeds them (an Image feature), they are written once to the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.data.conversations import ConversationSample, llava_samples, sharegpt_samples
from harness.errors import UserError
from harness.support.atomic import atomic_path


def load_rows(source: str, split: str | None = None) -> list[dict[str, Any]]:
    """All rows of a dataset as dicts; a local saved folder needs no network."""
    import datasets

    try:
        if Path(source).is_dir():
            data = datasets.load_from_disk(source)
        else:
            data = datasets.load_dataset(source, split=split or "train")
    except FileNotFoundError as exc:
        raise UserError(f"dataset {source!r} not found: {exc}") from None
    except (ValueError, ConnectionError) as exc:
        raise UserError(f"dataset {source!r} could not be loaded: {exc}") from None
    if isinstance(data, datasets.DatasetDict):
        name = split or ("train" if "train" in data else next(iter(data)))
        if name not in data:
            raise UserError(f"dataset {source!r} has no split {name!r} (has {list(data)})")
        data = data[name]
    if len(data) == 0:
        raise UserError(f"dataset {source!r}: the dataset is empty")
    return [dict(row) for row in data]


def _materialise_images(rows: list[dict[str, Any]], source: str) -> Path | None:
    """Embedded PIL images -> PNG files in the cache; rows then name them like files."""
    if not any(hasattr(row.get("image"), "save") for row in rows):
        return None
    from harness.specs import sha256_of
    from harness.support.paths import cache_dir

    folder = cache_dir("hub-images", sha256_of(source)[:16])
    for index, row in enumerate(rows):
        image = row.get("image")
        if hasattr(image, "save"):
            name = f"{index:08d}.png"
            if not (folder / name).exists():
                with atomic_path(folder / name, durable=False) as tmp:
                    image.convert("RGB").save(tmp, format="PNG")
            row["image"] = name
    return folder


def load_hub_llava(
    source: str, image_folder: Path | None = None, *, split: str | None = None
) -> list[ConversationSample]:
    """LLaVA-format conversations from a hub dataset or a save_to_disk folder."""
    rows = load_rows(source, split)
    for row in rows:
        if row.get("image") in ("", None):
            row.pop("image", None)
    embedded = _materialise_images(rows, source)
    return llava_samples(rows, f"dataset {source}", embedded or image_folder)


def load_hub_sharegpt(source: str, *, split: str | None = None) -> list[ConversationSample]:
    """ShareGPT-style conversations from a hub dataset or a save_to_disk folder."""
    return sharegpt_samples(load_rows(source, split), f"dataset {source}")
