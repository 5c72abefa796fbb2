"""Deterministic writers for the official file formats (same input, same bytes)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from harness.data.synthetic.scenes import Scene, png_bytes, render


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8")


def write_png(path: Path, scene: Scene) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(render(scene)))


def write_tsv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """A tab-separated file as pandas writes MMBench's: empty cells for missing values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


# The features cais/mmlu declares, so `datasets` reads `answer` as ClassLabel A-D.
MMLU_FEATURES = {
    "question": {"dtype": "string", "_type": "Value"},
    "subject": {"dtype": "string", "_type": "Value"},
    "choices": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
    "answer": {"names": ["A", "B", "C", "D"], "_type": "ClassLabel"},
}


def write_mmlu_parquet(path: Path, rows: list[dict]) -> None:
    """One split of one subject in the hub dataset's parquet layout."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("question", pa.string()),
            ("subject", pa.string()),
            ("choices", pa.list_(pa.string())),
            ("answer", pa.int64()),
        ],
        metadata={"huggingface": json.dumps({"info": {"features": MMLU_FEATURES}})},
    )
    columns = {name: [row[name] for row in rows] for name in schema.names}
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path, compression="snappy")
