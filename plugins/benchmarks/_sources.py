"""What the built-in benchmarks share when they meet a user's data: layouts, ids, sizes.

Users bring the official release, a hub dataset downloaded or saved to disk, or the files a
reference repository keeps. A folder in none of a benchmark's layouts, a repeated id or a text
too long for any model is refused here with one line naming the file, before any step works
on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.errors import UserError

# 16 characters per token (more than any LLaMA-family token spells) x 4,096 tokens (the longest
# context among the study's LLMs): a prompt text longer than this cannot fit any model the
# harness evaluates, and tokenizing and embedding it would only exhaust memory.
MAX_PROMPT_CHARS = 16 * 4096
HUB_DISK_MARKERS = ("dataset_dict.json", "dataset_info.json", "state.json")


def refuse_duplicates(ids: Iterable[Any], origin: str, what: str = "id") -> None:
    """One line naming the file and the first repeated id (ids are compared as strings)."""
    counts = Counter(str(i) for i in ids)
    repeated = [(i, n) for i, n in counts.items() if n > 1]
    if repeated:
        first, n = repeated[0]
        more = f" ({len(repeated) - 1} more ids repeat)" if len(repeated) > 1 else ""
        raise UserError(f"{origin}: {what} {first} appears {n} times; ids must be unique{more}")


def refuse_oversized(texts: Iterable[tuple[Any, str]], origin: str, what: str = "question") -> None:
    """Refuse, with a count, texts longer than MAX_PROMPT_CHARS; `texts` is (id, text) pairs."""
    long = [(str(i), len(t)) for i, t in texts if isinstance(t, str) and len(t) > MAX_PROMPT_CHARS]
    if long:
        worst_id, worst = max(long, key=lambda pair: pair[1])
        raise UserError(
            f"{origin}: {len(long)} {what} text(s) longer than {MAX_PROMPT_CHARS:,} characters "
            f"(the longest, id {worst_id}, has {worst:,}); no model's context holds them"
        )


def no_layout(benchmark: str, root: Path, accepted: Sequence[str]) -> UserError:
    """The one line for a folder in none of the benchmark's layouts."""
    return UserError(
        f"{benchmark}: {root} is in none of the accepted layouts: {'; '.join(accepted)}"
    )


def is_saved_to_disk(root: Path) -> bool:
    """A folder written by `datasets`' save_to_disk (one split, or a DatasetDict)."""
    return root.is_dir() and any((root / name).is_file() for name in HUB_DISK_MARKERS)


def parquet_files(root: Path, split: str | None = None) -> list[Path]:
    """Parquet files of a downloaded hub dataset (root or root/data), of one split if given.

    The hub names them `<split>-00000-of-00001.parquet` (sometimes with a hash suffix), or
    keeps one folder per split."""
    if not root.is_dir():
        return []
    found = sorted(root.glob("*.parquet")) + sorted(root.glob("data/*.parquet"))
    found += sorted(root.glob("data/*/*.parquet"))
    if split is None:
        return found
    return [p for p in found if p.name.startswith(f"{split}-") or p.parent.name == split]


def local_copy(source: Any) -> bool:
    """A hub source that names a folder on this machine (a download or a save_to_disk)."""
    path = str(source.path or "").partition(":")[0]
    return source.kind == "hub" and bool(path) and Path(path).expanduser().is_dir()


def is_hub_copy(root: Path) -> bool:
    return is_saved_to_disk(root) or bool(parquet_files(root))


def hub_columns(root: Path, split: str, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The named columns of a local hub copy's split, without reading its images (a cheap
    look for `check`); a column the copy lacks is left out of the rows."""
    if is_saved_to_disk(root):
        from ._common import saved_split

        data = saved_split(root, split)
        keep = [c for c in columns if c in data.column_names]
        return data.select_columns(keep).to_list()
    import pyarrow.parquet as pq

    files = parquet_files(root, split)
    if not files:
        splits = sorted({p.name.split("-")[0] for p in parquet_files(root)})
        raise UserError(f"{root}: no parquet files for split {split!r} (found splits {splits})")
    rows: list[dict[str, Any]] = []
    for path in files:
        names = pq.read_schema(path).names
        rows += pq.read_table(path, columns=[c for c in columns if c in names]).to_pylist()
    return rows
