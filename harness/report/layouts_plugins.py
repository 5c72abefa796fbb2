"""One table per benchmark that no study layout shows, with every metric it reports.

A benchmark may declare its report columns (`report_columns`: metric -> label, the optional
ReportColumns protocol); the score step records them in its BenchmarkResult, so the report needs
no plugin to draw them. A benchmark that declares nothing gets its top-level metrics (those
without a `/`), the headline first.
"""

from __future__ import annotations

from harness.report.entries import Entry, cell_label, sort_key
from harness.report.layouts import add_failed_column, label_axes
from harness.report.table import ReportTable, Row, Value, provenance_notes, score_value
from harness.results import CellResult


def report_columns(benchmark: str, cells: list[CellResult], runs: list[Entry]) -> dict[str, str]:
    """metric -> column label: what the benchmark declared, else its top-level metrics."""
    for cell in cells:
        result = cell.benchmarks.get(benchmark)
        if result is not None and result.columns:
            return dict(result.columns)
    primary = next((e.primary.get(benchmark) for e in runs if benchmark in e.scores), None)
    metrics: list[str] = [primary] if primary else []
    for entry in runs:
        metrics += [m for m in entry.scores.get(benchmark, {}) if "/" not in m and m not in metrics]
    return {m: m for m in metrics}


def benchmark_table(
    benchmark: str, cells: list[CellResult], runs: list[Entry]
) -> ReportTable | None:
    """Cells x the benchmark's metrics; None when there is only its headline to show."""
    runs = sorted((e for e in runs if benchmark in e.scores), key=sort_key)
    columns = report_columns(benchmark, cells, runs)
    if len(columns) < 2:
        return None
    shown = label_axes(runs)
    labels = list(columns.values())
    table = ReportTable(
        f"benchmark-{benchmark}",
        f"{benchmark}: every metric it reports, by cell",
        ["Cell", *labels],
        ["Cell", *labels],
    )
    for entry in runs:
        values = [Value(cell_label(entry, shown), entry.cell_id)]
        values += [score_value(entry.score(benchmark, m), entry.flags(benchmark)) for m in columns]
        table.rows.append(Row(values, entry.source, entry.cell_id))
    add_failed_column(table, runs, (benchmark,))
    table.notes = provenance_notes(runs, [benchmark])
    return table


def plugin_tables(
    cells: list[CellResult], runs: list[Entry], covered: set[str]
) -> list[ReportTable]:
    """A table of its own for each benchmark the study's layouts leave out."""
    names: list[str] = []
    for entry in sorted(runs, key=sort_key):
        names += [b for b in entry.scores if b not in covered and b not in names]
    tables = (benchmark_table(name, cells, runs) for name in names)
    return [t for t in tables if t is not None]
