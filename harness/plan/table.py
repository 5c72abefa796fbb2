"""The plan as a terminal table that keeps every header and cell id whole at any width.

Headers are single words with their units explained once below the table; numbers never wrap;
a cell id that does not fit folds onto a second line instead of being cut with an ellipsis.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

# header, the `estimate` key it shows (None: a plan field), digits
COLUMNS: tuple[tuple[str, str | None, int], ...] = (
    ("steps", None, 0),
    ("done", None, 0),
    ("GPU-h", "stage2_gpu_hours", 2),
    ("$", "total_usd", 2),
    ("judge $", "judge_usd", 2),
    ("GB/GPU", "memory_gb_per_gpu", 1),
)
CAPTION = (
    "GPU-h: stage-2 GPU-hours per node; $: estimated total (GPU and judge); "
    "GB/GPU: estimated memory per GPU, ! = will not fit"
)


def _fmt(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def plan_table(rows: dict[str, Any]) -> Table:
    """`rows` is plan_rows()'s dict: one line per cell with its steps and estimates."""
    table = Table(
        title=f"plan: {len(rows['cells'])} cells",
        caption=CAPTION,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("cell", overflow="fold", min_width=12)
    table.add_column("hardware", no_wrap=True, min_width=8)
    for header, _, _ in COLUMNS:
        table.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    for cell in rows["cells"]:
        est = cell["estimate"]
        values = []
        for _, key, digits in COLUMNS:
            if key is None:
                values.append(str(cell["steps" if not values else "done"]))
            elif key in ("total_usd", "judge_usd") and est.get("judge_price_unknown"):
                values.append("unknown")  # a judge with no price is never shown as $0
            else:
                values.append(_fmt(est.get(key), digits))
        if est.get("oom"):
            values[-1] += " !"
        table.add_row(cell["id"], cell["hardware"], *values)
    return table


SAVINGS_CAPTION = (
    "T4: at the study's Table 4 efficiency (A100s, LLaVA's code); unmarked: at the efficiency "
    "`harness calibrate` measured in your runs (methods it has not measured stay at Table 4's); "
    "GPU-h and $: both stages, GPU only"
)


def savings_table(rows: dict[str, Any]) -> Table | None:
    """Each cell's GPU-hours and dollars at the study's Table 4 efficiency and at the measured
    one, and what the difference saves; None without a calibration (nothing to compare)."""
    cells = [cell for cell in rows["cells"] if "table4" in cell["estimate"]]
    if not cells:
        return None
    table = Table(
        title="measured throughput against the study's Table 4",
        caption=SAVINGS_CAPTION,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("cell", overflow="fold", min_width=12)
    for header in ("T4 GPU-h", "GPU-h", "T4 $", "$", "saved $"):
        table.add_column(header, justify="right", no_wrap=True, min_width=len(header))

    def hours(est: dict[str, Any]) -> float:
        return est.get("stage1_gpu_hours", 0.0) + est.get("stage2_gpu_hours", 0.0)

    for cell in cells:
        est = cell["estimate"]
        table4 = est["table4"]
        values = (hours(table4), hours(est), table4["gpu_usd"], est["gpu_usd"])
        saved = table4["gpu_usd"] - est["gpu_usd"]
        table.add_row(cell["id"], *(_fmt(v, 2) for v in (*values, saved)))
    total = rows.get("total_estimate", {})
    if "table4_gpu_usd" in total:
        saved = total["table4_gpu_usd"] - total["gpu_usd"]
        usd = (total["table4_gpu_usd"], total["gpu_usd"], saved)
        table.add_row("total", "", "", *(_fmt(v, 2) for v in usd))
    return table
