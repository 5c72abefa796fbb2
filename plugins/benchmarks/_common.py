"""Helpers the built-in benchmarks share: reading official files, data sources, run statistics."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.protocols import EvalContext
from harness.support.hashing import sha256_bytes

if TYPE_CHECKING:
    from harness.specs import DataSource


def sha256_text(text: str) -> str:
    return sha256_bytes(text)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a bad line is reported with file and line number."""
    if not Path(path).is_file():
        raise UserError(f"missing file: {path}")
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
    return rows


def read_json(path: Path) -> Any:
    if not Path(path).is_file():
        raise UserError(f"missing file: {path}")
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON ({exc.msg})") from exc


def source_dir(source: DataSource, subfolder: str) -> Path:
    """The folder in the official layout: a local path, or the synthetic world's mini set."""
    if source.kind == "synthetic":
        from harness.data.synthetic import synthetic_root

        root = Path(synthetic_root(source.seed, source.scale)) / subfolder
    elif source.kind == "local":
        if not source.path:
            raise UserError(f"{subfolder}: a local data source needs a path")
        root = Path(source.path).expanduser()
    else:
        raise UserError(f"{subfolder}: source kind {source.kind!r} has no folder")
    if not root.exists():
        raise UserError(f"{subfolder}: data folder {root} does not exist")
    return root


def hub_rows(source: DataSource, default_split: str) -> list[dict[str, Any]]:
    """Rows of a hub dataset (`org/name` or `org/name:config`), or a local copy in hub layout."""
    import datasets

    path, _, config = (source.path or "").partition(":")
    if not path:
        raise UserError("a hub data source needs a dataset id")
    split = source.split or default_split
    from ._sources import is_saved_to_disk

    if is_saved_to_disk(Path(path).expanduser()):
        return saved_rows(Path(path).expanduser(), split)
    try:
        data = datasets.load_dataset(path, config or None, split=split)
    except Exception as exc:  # datasets raises many types for a missing id / split / network
        raise UserError(f"cannot load hub dataset {source.path} (split {split}): {exc}") from exc
    return [dict(row) for row in data]


def saved_split(root: Path, split: str) -> Any:
    """One split of a folder written by `datasets`' save_to_disk (a DatasetDict or a split)."""
    import datasets

    data = datasets.load_from_disk(str(root))
    if isinstance(data, datasets.DatasetDict):
        if split not in data:
            raise UserError(f"{root}: saved dataset has no split {split!r} (has {list(data)})")
        data = data[split]
    return data


def saved_rows(root: Path, split: str) -> list[dict[str, Any]]:
    return [dict(row) for row in saved_split(root, split)]


def save_hub_image(image: Any, work_dir: Path, benchmark: str, item_id: str) -> str:
    """Write a hub dataset's image (PIL or {bytes}) to the work dir; the engine wants paths."""
    folder = Path(work_dir) / "images" / benchmark
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{item_id}.png"
    if not target.exists():
        if isinstance(image, dict) and image.get("bytes"):
            target.write_bytes(image["bytes"])
        elif hasattr(image, "save"):
            image.convert("RGB").save(target)
        else:
            raise UserError(f"{benchmark} item {item_id}: hub row has no usable image")
    return str(target)


def require_image(path: Path, benchmark: str, item_id: str) -> str:
    if not Path(path).is_file():
        raise UserError(f"{benchmark} item {item_id}: image file {path} does not exist")
    return str(path)


def judge_record(ctx: EvalContext) -> dict[str, Any]:
    """{name, snapshot, official}: only an API judge counts as the official GPT-4 judge."""
    return {
        "name": ctx.judge_name,
        "snapshot": ctx.judge_snapshot,
        "official": ctx.judge_name == "openai",
    }


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def pstd(values: Sequence[float]) -> float:
    """Population std (numpy's default), as MM-Vet reports it."""
    if not values:
        return float("nan")
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def combine_runs(
    per_run: list[dict[str, float]],
) -> tuple[dict[str, float], dict[str, float]]:
    """Means over judging runs, and population std when there is more than one run."""
    keys = sorted({k for run in per_run for k in run})
    means = {k: mean(r[k] for r in per_run if k in r) for k in keys}
    if len(per_run) < 2:
        return means, {}
    stds = {k: pstd([r[k] for r in per_run if k in r]) for k in keys}
    return means, stds


def count_failures(reasons: Iterable[str]) -> dict[str, int]:
    return dict(Counter(reasons))
