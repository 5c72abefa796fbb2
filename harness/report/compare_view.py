"""A comparison as a terminal table (plain ASCII when not a TTY), labelled when forced."""

from __future__ import annotations

from rich import box
from rich.console import RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from harness.report.compare import Comparison


def _num(value: float | None, digits: int = 1, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def render_comparison(comparison: Comparison, *, plain: bool = False) -> list[RenderableType]:
    out: list[RenderableType] = []
    if comparison.label:
        out.append(Text(comparison.label, style="" if plain else "bold red"))
    out.append(Text(f"A: {comparison.run_a}\nB: {comparison.run_b}"))
    table = Table(box=box.ASCII if plain else box.ROUNDED, header_style="" if plain else "bold")
    table.add_column("Cell", overflow="fold", min_width=12)
    table.add_column("Benchmark", overflow="fold", min_width=11)
    for name in ("A", "B", "B-A", "Paired B-A [95% CI]", "Items", "Sig"):
        table.add_column(name, justify="right", no_wrap=True)
    previous = None
    for row in comparison.rows:
        interval = row.interval
        if interval:
            paired = f"{interval.estimate:+.1f} [{interval.low:+.1f}, {interval.high:+.1f}]"
            items = f"{interval.n}" + (f" (-{row.excluded})" if row.excluded else "")
            sig = "yes" if interval.significant else "no"
        else:
            paired, items, sig = "no samples", "-", "-"
        pair = row.cell_a if row.cell_a == row.cell_b else f"{row.cell_a} vs {row.cell_b}"
        table.add_row(
            pair if pair != previous else "",
            row.benchmark + (" !" if row.mismatch else ""),
            _num(row.value_a),
            _num(row.value_b),
            _num(row.delta, sign=True),
            paired,
            items,
            sig,
        )
        previous = pair
    out.append(table)
    notes = [
        "A, B: each benchmark's headline metric; Paired B-A: bootstrap over the items both runs "
        "scored (ratio of sums x100 when samples carry reference scores, x100 for 0-1 item "
        "scores, else the mean item score)",
        "Items: paired items used (-N: items missing or failed in either run, left out)",
    ]
    for row in comparison.rows:
        for problem in row.mismatch:
            notes.append(f"! {row.benchmark} {row.cell_a} vs {row.cell_b}: {problem}")
    style = "" if plain else "dim"
    out += [Padding(Text(note, style=style), (0, 0, 0, 2), expand=False) for note in notes]
    return out
