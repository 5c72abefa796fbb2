"""LLaVA-Bench (In-the-Wild)'s files in the layouts users have, read into plain rows.

The hub repository liuhaotian/llava-bench-in-the-wild and LLaVA's evaluation folder
(playground/data/eval/llava-bench-in-the-wild) hold questions.jsonl, context.jsonl,
answers_gpt4.jsonl and images/; LLaVA's llava/eval/table names its files question.jsonl and
answer/answer_<model>.jsonl; lmms-lab's hub copy is parquet with the images inside. Every
layout becomes rows of {question_id, question, category, caption, reference, image}.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import UserError

from . import _common as common
from . import _sources as sources

QUESTIONS = ("questions.jsonl", "question.jsonl")
CONTEXTS = ("context.jsonl",)
REFERENCES = ("answers_gpt4.jsonl", "answer/answer_gpt4.jsonl", "answer_gpt4.jsonl")
# where the files sit below the folder a user points at
SUBFOLDERS = (
    ".",
    "llava-bench-in-the-wild",
    "playground/data/eval/llava-bench-in-the-wild",
    "llava/eval/table",
)
LAYOUTS = (
    "the hub repository's files (questions.jsonl, context.jsonl, answers_gpt4.jsonl, images/)",
    "a LLaVA checkout (playground/data/eval/llava-bench-in-the-wild/, or llava/eval/table/ "
    "with question.jsonl and answer/answer_gpt4.jsonl)",
    "a hub copy in parquet (lmms-lab/llava-bench-in-the-wild) or saved with save_to_disk",
)
HUB_COLUMNS = ("question_id", "question", "category", "caption", "gpt_answer", "image_id")


def first(root: Path, names: Sequence[str]) -> Path | None:
    return next((root / n for n in names if (root / n).is_file()), None)


def files_root(root: Path) -> Path | None:
    """The folder holding the question file, at the root or where a known layout puts it."""
    for sub in SUBFOLDERS:
        if first(root / sub, QUESTIONS) is not None:
            return (root / sub).resolve()
    return None


def keyed(rows: list[dict[str, Any]], key: str, origin: Path) -> dict[str, dict[str, Any]]:
    """Rows by `key`, refusing a row without it and a repeated value (one line each)."""
    for number, row in enumerate(rows, 1):
        if key not in row:
            raise UserError(f"{origin}: row {number} has no {key!r}")
    sources.refuse_duplicates((row[key] for row in rows), str(origin), key)
    return {str(row[key]): row for row in rows}


def joined(caption: Any) -> str:
    return "\n".join(caption) if isinstance(caption, list) else str(caption)


def local_rows(root: Path) -> list[dict[str, Any]]:
    """Rows of a folder in one of the file layouts; images are checked to exist, not opened."""
    base = files_root(root)
    if base is None:
        raise sources.no_layout("llava-bench", root, LAYOUTS)
    question_file = first(base, QUESTIONS)
    context_file = first(base, CONTEXTS)
    reference_file = first(base, REFERENCES)
    for names, found in ((CONTEXTS, context_file), (REFERENCES, reference_file)):
        if found is None:
            raise UserError(f"llava-bench: {base} has {question_file.name} but none of {names}")
    questions = common.read_jsonl(question_file)
    by_id = keyed(questions, "question_id", question_file)
    contexts = keyed(common.read_jsonl(context_file), "image", context_file)
    references = keyed(common.read_jsonl(reference_file), "question_id", reference_file)
    rows = []
    for qid, row in by_id.items():
        context = contexts.get(str(row.get("image")))
        if context is None:
            raise UserError(f"llava-bench item {qid}: no caption for image {row.get('image')}")
        if qid not in references:
            raise UserError(f"llava-bench item {qid}: no reference answer in {reference_file}")
        rows.append(
            {
                "question_id": qid,
                "question": row["text"],
                "category": row["category"],
                "caption": joined(context["caption"]),
                "reference": references[qid]["text"],
                "image": common.require_image(base / "images" / row["image"], "llava-bench", qid),
            }
        )
    refuse_oversized(rows, str(question_file))
    return rows


def hub_rows(rows: list[dict[str, Any]], origin: str) -> list[dict[str, Any]]:
    """Hub rows ({question_id, question, caption, gpt_answer, category, image}) as plain rows;
    `image` stays what the hub gave (saved to a file by the loader, not by a check)."""
    sources.refuse_duplicates((row.get("question_id") for row in rows), origin, "question_id")
    out = [
        {
            "question_id": str(row["question_id"]),
            "question": row["question"],
            "category": row["category"],
            "caption": joined(row["caption"]),
            "reference": row["gpt_answer"],
            "image": row.get("image"),
        }
        for row in rows
    ]
    refuse_oversized(out, origin)
    return out


def refuse_oversized(rows: list[dict[str, Any]], origin: str) -> None:
    for field in ("question", "caption", "reference"):
        sources.refuse_oversized(((r["question_id"], r[field]) for r in rows), origin, field)
