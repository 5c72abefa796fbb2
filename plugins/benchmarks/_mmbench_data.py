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
from . import _sources as sources
from . import _xlsx as xlsx
from ._sources import local_copy  # noqa: F401 (mmbench.py imports it from here)

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


LAYOUTS = (
    "an official TSV file (mmbench_dev_20230712.tsv, MMBench_DEV_EN.tsv, "
    "mmbench_test_en_20231003.tsv, ...; base64 images in its `image` column)",
    "a folder holding one English TSV of the split",
    "a hub copy of MMBench (parquet files or a save_to_disk folder)",
)


def split_tsvs(root: Path, split: str) -> list[Path]:
    """The English TSVs of `split` in a folder, under any of the official names."""
    found = []
    for path in sorted(root.glob("*.tsv")):
        name = path.name.lower()
        if name.startswith("mmbench") and f"_{split}" in name and "_cn" not in name:
            found.append(path)
    return found


def tsv_path(source: DataSource, split: str) -> Path | None:
    """The TSV to read, or None when the local folder is a hub copy instead."""
    if source.kind == "local" and source.path and source.path.endswith(".tsv"):
        path = Path(source.path).expanduser()
        if not path.is_file():
            raise UserError(f"mmbench: file {path} does not exist")
        return path
    root = common.source_dir(source, "mmbench")
    found = split_tsvs(root, split)
    exact = root / f"mmbench_{split}_en.tsv"
    if exact in found or len(found) == 1:
        return exact if exact in found else found[0]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise UserError(f"mmbench: several {split} TSVs in {root} ({names}); pass the file itself")
    if source.kind == "local" and sources.is_hub_copy(root):
        return None
    if split_tsvs(root, ""):
        names = ", ".join(p.name for p in split_tsvs(root, ""))
        raise UserError(f"mmbench: no TSV of split {split!r} in {root} (has {names})")
    raise sources.no_layout("mmbench", root, LAYOUTS)


def read_tsv(path: Path) -> list[dict[str, Any]]:
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def write_image(data: Any, work_dir: Path | None, index: str, origin: str) -> str | None:
    """The image as a file in the work dir; with no work dir (a check) only its presence."""
    if missing(data):
        raise UserError(f"mmbench item {index} ({origin}): no image")
    if work_dir is None:
        return None
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


def make_item(row: dict[str, Any], split: str, work_dir: Path | None, origin: str) -> Item:
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


def read_rows(source: DataSource, split: str) -> tuple[list[dict[str, Any]], str]:
    """The split's rows and where they came from (a TSV, a hub id, or a local hub copy)."""
    path = None if source.kind == "hub" else tsv_path(source, split)
    if path is not None:
        return read_tsv(path), str(path)
    if source.kind == "hub":
        return common.hub_rows(source, split), f"hub:{source.path}"
    from harness.specs import DataSource

    copy = DataSource(kind="hub", path=str(common.source_dir(source, "mmbench")), split=split)
    return common.hub_rows(copy, split), str(copy.path)


def load_rows(source: DataSource, split: str, work_dir: Path | None) -> list[Item]:
    """Items of one split; rotated copies stored in legacy files are dropped (we rotate).

    With `work_dir` None (a check) the rows are validated and no image is written."""
    rows, origin = read_rows(source, split)
    return items_of(rows, split, work_dir, origin)


def items_of(
    rows: list[dict[str, Any]], split: str, work_dir: Path | None, origin: str
) -> list[Item]:
    seen = {str(r.get("index")) for r in rows}
    kept = []
    for row in rows:
        try:
            index = int(float(row["index"]))
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{origin}: a row has no integer index: {row.get('index')!r}") from None
        if index >= CIRCULAR_OFFSET and str(index % CIRCULAR_OFFSET) in seen:
            continue
        kept.append({**row, "index": index})
    sources.refuse_duplicates((r["index"] for r in kept), origin, "index")
    sources.refuse_oversized(
        ((r["index"], prompt_text(r)) for r in kept), origin, "question (with hint and options)"
    )
    return [make_item(row, split, work_dir, origin) for row in kept]


def prompt_text(row: dict[str, Any]) -> str:
    parts = [row.get("hint"), row.get("question"), *(row.get(x) for x in OPTION_LETTERS)]
    return "\n".join(str(p) for p in parts if not missing(p))


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


# The columns LLaVA's convert_mmbench_for_submission.py keeps for the evaluation server: the
# TSV's minus hint, category, source, image, comment and l2-category, with `prediction` after D.
UPLOAD_COLUMNS = ("index", "question", "A", "B", "C", "D", "prediction", "split")
UPLOAD_NAME = "mmbench_test_en_submission.xlsx"


def write_submission(rows: list[dict[str, Any]], folder: Path) -> dict[str, str]:
    """The prediction file the MMBench evaluation server takes (.xlsx, one row per rotation,
    indices offset as its circular copies are), and the same rows as a TSV to read."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    upload = xlsx.write_xlsx(folder / UPLOAD_NAME, UPLOAD_COLUMNS, rows)
    table = folder / "mmbench_test_en_submission.tsv"
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    return {"submission": str(table), "submission_xlsx": str(upload)}
