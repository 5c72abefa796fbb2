"""The study's published rows (paper_rows.json), as entries labelled 'paper:' for `--with-paper`.

Numbers come from PROTOCOLS.md section 2 and the tables of Lu et al. (2023); dollars are derived
as GPU-hours x the study's $13.63 per node-hour.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from harness.report.entries import Entry

PAPER_FILE = Path(__file__).with_name("paper_rows.json")
PAPER_PREFIX = "paper: "


@cache
def _load() -> dict[str, Any]:
    return json.loads(PAPER_FILE.read_text())


def paper_entries(table_key: str) -> list[Entry]:
    """The study's rows for one table ('table1' ... 'table5'); empty for tables it lacks."""
    data = _load()
    price = float(data["usd_per_node_hour"])
    entries = []
    for row in data["tables"].get(table_key, []):
        hours = row.get("gpu_hours")
        entries.append(
            Entry(
                label=PAPER_PREFIX + row["label"],
                axes=dict(row["axes"]),
                scores={b: dict(m) for b, m in row["scores"].items()},
                std={b: dict(m) for b, m in row.get("std", {}).items()},
                source="paper",
                gpu_hours=hours,
                usd=round(hours * price, 2) if hours is not None else None,
                trainable_params=row.get("trainable_params"),
                judges={b: data["judges"][b] for b in row["scores"] if b in data["judges"]},
            )
        )
    return entries
