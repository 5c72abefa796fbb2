"""MMLU's data in the layouts users have: the original release, cais/mmlu's hub layout, JSONL.

Every layout reads into {subject: [{"question", "choices", "answer"}]} with `answer` an index
0..3, so the prompt is built the same way whichever files the questions came from.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError

from . import _common as common
from . import _sources as sources

if TYPE_CHECKING:
    from harness.specs import DataSource

LETTERS = "ABCD"
SKIP_FOLDERS = ("all", "auxiliary_train")
LAYOUTS = (
    "the original release (data/dev/<subject>_dev.csv, data/test/<subject>_test.csv)",
    "cais/mmlu's hub layout (<subject>/<split>-*.parquet)",
    "JSON lines (dev.jsonl and test.jsonl, or one .jsonl file, rows with subject, question, "
    "choices, answer)",
)
# the release names its validation folder `val`; the hub names the split `validation`
RELEASE_FOLDER = {"validation": "val"}

Rows = dict[str, list[dict[str, Any]]]


def release_root(root: Path) -> Path | None:
    """The folder holding dev/ and test/ of the original release (root or root/data)."""
    for candidate in (root / "data", root):
        if (candidate / "test").is_dir() and any((candidate / "test").glob("*_test.csv")):
            return candidate
    return None


def detect(root: Path) -> str:
    """ "release", "hub" or "jsonl"; a folder in none of them gets one line naming them all."""
    if root.is_file() and root.suffix == ".jsonl":
        return "jsonl"
    if root.is_dir():
        if release_root(root) is not None:
            return "release"
        if any(root.glob("*/*.parquet")):
            return "hub"
        if (root / "test.jsonl").is_file() or (root / "dev.jsonl").is_file():
            return "jsonl"
    raise sources.no_layout("mmlu", root, LAYOUTS)


def answer_index(value: Any, origin: str) -> int:
    text = str(value).strip()
    if text in LETTERS and text:
        return LETTERS.index(text)
    if text.isdigit() and int(text) in range(4):
        return int(text)
    raise UserError(f"{origin}: answer {value!r} is neither a letter A-D nor an index 0-3")


def release_split(root: Path, split: str) -> Rows:
    """{subject: rows} from <split>/<subject>_<split>.csv (no header: question, A-D, answer)."""
    base = release_root(root)
    folder_name = RELEASE_FOLDER.get(split, split)
    folder = base / folder_name if base else root / folder_name
    by_subject: Rows = {}
    suffix = f"_{folder_name}.csv"
    for path in sorted(folder.glob(f"*{suffix}")):
        rows = []
        with path.open(newline="", encoding="utf-8") as handle:
            for number, record in enumerate(csv.reader(handle), 1):
                if not record:
                    continue
                if len(record) != 6:
                    raise UserError(
                        f"{path}:{number}: {len(record)} columns, the release has 6 "
                        "(question, A, B, C, D, answer)"
                    )
                origin = f"{path}:{number}"
                rows.append(
                    {
                        "question": record[0],
                        "choices": record[1:5],
                        "answer": answer_index(record[5], origin),
                    }
                )
        by_subject[path.name[: -len(suffix)]] = rows
    if not by_subject:
        raise UserError(f"mmlu: no {folder_name}/<subject>{suffix} files in {base or root}")
    return by_subject


def hub_layout_split(root: Path, split: str) -> Rows:
    """{subject: rows} from the cais/mmlu layout: <subject>/<split>-*.parquet (or all/ alone)."""
    import pyarrow.parquet as pq

    by_subject: Rows = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name in SKIP_FOLDERS:
            continue
        files = sorted(folder.glob(f"{split}-*.parquet"))
        if files:
            by_subject[folder.name] = [r for f in files for r in pq.read_table(f).to_pylist()]
    if not by_subject:  # only the `all` config downloaded: its rows name their subject
        for path in sorted((root / "all").glob(f"{split}-*.parquet")):
            for row in pq.read_table(path).to_pylist():
                by_subject.setdefault(row["subject"], []).append(row)
    if not by_subject:
        raise UserError(f"mmlu: no <subject>/{split}-*.parquet files in {root}")
    return by_subject


def jsonl_split(path: Path, split: str) -> Rows:
    """{subject: rows} from JSON lines: `<split>.jsonl` in a folder, or one file whose rows
    carry a `split` field (a file without one holds the test questions; dev.jsonl beside it
    holds the shots)."""
    if path.is_dir():
        file = path / f"{split}.jsonl"
        if not file.is_file() and split == "validation":
            file = path / "val.jsonl"
        rows, origin = common.read_jsonl(file), str(file)
    else:
        rows, origin = common.read_jsonl(path), str(path)
        if any("split" in row for row in rows):
            rows = [row for row in rows if row.get("split") == split]
        elif split == "dev":
            rows = common.read_jsonl(path.parent / "dev.jsonl")
            origin = str(path.parent / "dev.jsonl")
    by_subject: Rows = {}
    for number, row in enumerate(rows, 1):
        where = f"{origin} row {number}"
        if "subject" not in row or "question" not in row or "answer" not in row:
            raise UserError(f"{where}: needs subject, question, choices (or A-D) and answer")
        choices = row.get("choices") or [row.get(letter) for letter in LETTERS]
        by_subject.setdefault(str(row["subject"]), []).append(
            {
                "question": str(row["question"]),
                "choices": choices,
                "answer": answer_index(row["answer"], where),
            }
        )
    return by_subject


def hub_split(source: DataSource, split: str) -> Rows:
    """{subject: rows} of a hub id (`cais/mmlu`, `cais/mmlu:anatomy`), downloaded here."""
    from harness.specs import DataSource

    path = source.path or "cais/mmlu"
    if ":" not in path:
        path += ":all"
    rows = common.hub_rows(DataSource(kind="hub", path=path, split=split), split)
    by_subject: Rows = {}
    for row in rows:
        by_subject.setdefault(row["subject"], []).append(row)
    return by_subject


def read_split(source: DataSource, split: str) -> Rows:
    """The split's questions by subject, from whichever layout the source is in."""
    if source.kind == "hub":
        return hub_split(source, split)
    root = common.source_dir(source, "mmlu")
    layout = detect(root)
    if layout == "release":
        return release_split(root, split)
    if layout == "hub":
        return hub_layout_split(root, split)
    return jsonl_split(root, split)
