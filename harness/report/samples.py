"""Per-item scores from RUN_DIR/samples/<cell id>/<benchmark>.jsonl, for paired comparisons,
or from <benchmark>.items.jsonl where the benchmark scores questions, not requests (MMBench's
rotations, MMLU's log-likelihoods): same line format, one line per question.

Each line holds at least "id" and "score": a number, a list of numbers (one per judging run,
averaged here), or null when the item failed (failed items are left out, never scored 0 here).
LLaVA-Bench and Vicuna-80 judge the reference answer too: its score, from a "reference" field or
from "parsed" (reference, model) pairs, lets the comparison use their ratio-of-means statistic.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError


@dataclass
class ItemScore:
    score: float | None
    reference: float | None = None


def _mean(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, list):
        numbers = [
            float(v) for v in value if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        return sum(numbers) / len(numbers) if numbers else None
    return None


def _pair_references(parsed: Any) -> list[float] | None:
    """Reference scores from per-run (reference, model) pairs; None unless every run has one."""
    if not isinstance(parsed, list) or not parsed:
        return None
    refs = []
    for pair in parsed:
        if pair is None:
            continue
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(_mean(v) is not None for v in pair)
        ):
            return None
        refs.append(float(pair[0]))
    return refs or None


def samples_path(run_dir: Path, cell_id: str, benchmark: str) -> Path:
    return Path(run_dir) / "samples" / cell_id / f"{benchmark}.jsonl"


def item_scores_path(run_dir: Path, cell_id: str, benchmark: str) -> Path:
    """Per-question scores of benchmarks whose questions are not one request each."""
    return Path(run_dir) / "samples" / cell_id / f"{benchmark}.items.jsonl"


def read_cell_scores(run_dir: Path, cell_id: str, benchmark: str) -> dict[str, ItemScore] | None:
    """The scores a paired comparison uses: per question where the benchmark wrote them,
    else per sample line; None when the run kept neither."""
    items = item_scores_path(run_dir, cell_id, benchmark)
    if items.is_file():
        return read_item_scores(items)
    return read_item_scores(samples_path(run_dir, cell_id, benchmark))


def read_item_scores(path: Path) -> dict[str, ItemScore] | None:
    """id -> score for one cell and benchmark; None when the run kept no samples for it."""
    if not path.is_file():
        return None
    items: dict[str, ItemScore] = {}
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                item_id = str(record["id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UserError(f"{path}:{line_no}: not a sample line with an 'id'") from None
            reference = record.get("reference", _pair_references(record.get("parsed")))
            items[item_id] = ItemScore(_mean(record.get("score")), _mean(reference))
    return items


def mean_over_runs(tables: list[dict[str, ItemScore]]) -> dict[str, ItemScore]:
    """Each item's score averaged over several runs of one cell (training seeds, say), so that
    a bootstrap over items sees the seed-averaged model. An item missing or failed in any run
    is left out (score None), as a comparison leaves it out of one run."""
    if not tables:
        return {}
    out: dict[str, ItemScore] = {}
    for item_id in tables[0]:
        found = [t.get(item_id) for t in tables]
        scores = [f.score for f in found if f is not None and f.score is not None]
        if len(scores) < len(tables):
            out[item_id] = ItemScore(None)
            continue
        refs = [f.reference for f in found if f is not None and f.reference is not None]
        reference = sum(refs) / len(refs) if len(refs) == len(tables) else None
        out[item_id] = ItemScore(sum(scores) / len(scores), reference)
    return out
