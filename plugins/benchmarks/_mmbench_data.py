"""Reading MMBench's TSV files (base64 images) and hub copies into validated items."""

from __future__ import annotations

import base64
import binascii
import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.protocols import Item

from . import _choices as choices
from . import _common as common

if TYPE_CHECKING:
    from harness.specs import DataSource

# MMBench's L-2 skill names -> the study's abbreviations (Table 3b).
L2_SKILLS = {
    "logic_reasoning": "LR",
    "attribute_reasoning": "AR",
    "relation_reasoning": "RR",
    "finegrained_perception (instance-level)": "FP-S",
    "finegrained_perception (cross-instance)": "FP-C",
    "coarse_perception": "CP",
}
CIRCULAR_OFFSET = 1_000_000  # MMBench's index offset of rotated copies
OPTION_LETTERS = "ABCDEFGHI"


def missing(value: Any) -> bool:
    if isinstance(value, float) and value != value:  # NaN from pandas-written files
        return True
    return value is None or str(value) in ("", "nan")


def tsv_path(source: DataSource, split: str) -> Path:
    if source.kind == "local" and source.path and source.path.endswith(".tsv"):
        path = Path(source.path).expanduser()
        if not path.is_file():
            raise UserError(f"mmbench: file {path} does not exist")
        return path
    root = common.source_dir(source, "mmbench")
    path = root / f"mmbench_{split}_en.tsv"
    if not path.is_file():
        raise UserError(f"mmbench: {path} does not exist (split {split!r})")
    return path


def read_tsv(path: Path) -> list[dict[str, Any]]:
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def write_image(data: Any, work_dir: Path, index: str, origin: str) -> str:
    if missing(data):
        raise UserError(f"mmbench item {index} ({origin}): no image")
    if not isinstance(data, str):
        return common.save_hub_image(data, work_dir, "mmbench", index)
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UserError(f"mmbench item {index} ({origin}): image is not valid base64") from exc
    folder = Path(work_dir) / "images" / "mmbench"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (f"{index}.png" if raw[:4] == b"\x89PNG" else f"{index}.jpg")
    if not target.exists():
        target.write_bytes(raw)
    return str(target)


def make_item(row: dict[str, Any], split: str, work_dir: Path, origin: str) -> Item:
    index = str(row.get("index"))
    options = {}
    for letter in OPTION_LETTERS:
        if letter in row and not missing(row[letter]):
            options[letter] = str(row[letter])
    if list(options) != choices.letters(len(options)):
        raise UserError(f"mmbench item {index} ({origin}): options {list(options)} skip a letter")
    if len(options) < 2:
        raise UserError(f"mmbench item {index} ({origin}): needs at least two options")
    answer = None if missing(row.get("answer")) else str(row["answer"]).strip()
    if answer is not None and answer not in options:
        raise UserError(
            f"mmbench item {index} ({origin}): answer {answer!r} is not one of the "
            f"{len(options)} options {list(options)}"
        )
    if answer is None and split != "test":
        raise UserError(f"mmbench item {index} ({origin}): no answer on split {split!r}")
    l2 = row.get("l2-category", row.get("L2-category"))
    data = {
        "index": index,
        "question": str(row["question"]),
        "hint": None if missing(row.get("hint")) else str(row["hint"]),
        "options": options,
        "answer": answer,
        "category": str(row.get("category")),
        "l2": L2_SKILLS.get(str(l2), str(l2)),
        "split": split,
    }
    image = write_image(row.get("image"), work_dir, index, origin)
    return Item(id=index, data=data, image=image)


def load_rows(source: DataSource, split: str, work_dir: Path) -> list[Item]:
    """Items of one split; rotated copies stored in legacy files are dropped (we rotate)."""
    if source.kind == "hub":
        rows, origin = common.hub_rows(source, split), f"hub:{source.path}"
    else:
        path = tsv_path(source, split)
        rows, origin = read_tsv(path), str(path)
    seen = {str(r.get("index")) for r in rows}
    items = []
    for row in rows:
        index = int(float(row["index"]))
        if index >= CIRCULAR_OFFSET and str(index % CIRCULAR_OFFSET) in seen:
            continue
        row = {**row, "index": index}
        items.append(make_item(row, split, work_dir, origin))
    return items


def submission_rows(
    item: Item,
    predicted: list[str | None],
    rotation: Callable[[Item, int], tuple[dict[str, str], str | None]],
) -> list[dict[str, Any]]:
    """One row per rotation, indices offset as MMBench's circular copies are."""
    rows = []
    for k, letter in enumerate(predicted):
        options, _ = rotation(item, k)
        row = {
            "index": int(item.id) + k * CIRCULAR_OFFSET,
            "question": item.data["question"],
            "hint": item.data.get("hint") or "",
        }
        row.update({x: options.get(x, "") for x in "ABCD"})
        row.update(
            prediction=letter or "",
            category=item.data["category"],
            **{"l2-category": item.data["l2"], "split": item.data["split"]},
        )
        rows.append(row)
    return rows
