"""Markdown, CSV and JSON exports of the report tables, written under RUN_DIR/report/."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import UserError
from harness.report.build import build_tables, run_summary
from harness.report.table import ReportTable
from harness.results import RunResults
from harness.support.atomic import write_atomic

FORMATS = ("md", "csv", "json", "html")


def load_results(run_dir: Path) -> RunResults:
    """RUN_DIR/results.json, or one clear error naming the file."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise UserError(f"{path}: no results.json here (is {run_dir} a run directory?)")
    try:
        return RunResults.read(path)
    except (ValueError, ValidationError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{path}: not a valid results file: {first}") from None


def plain_text(text: str, marks: str) -> str:
    """The displayed text without its marks: CSV cells carry marks in their own column."""
    text = text.removeprefix("~")
    return text[: len(text) - len(marks)] if marks and text.endswith(marks) else text


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(results: RunResults, tables: list[ReportTable]) -> str:
    lines = ["# Results: " + results.experiment.get("name", "custom"), ""]
    lines += [f"- {k}: {v}" for k, v in run_summary(results).items()]
    for table in tables:
        lines += ["", f"## {table.title}", ""]
        lines.append("| " + " | ".join(_md_cell(c) for c in table.columns) + " |")
        lines.append("|" + "|".join("---" for _ in table.columns) + "|")
        for row in table.rows:
            lines.append("| " + " | ".join(_md_cell(v.text) for v in row.values) + " |")
        if table.notes:
            lines.append("")
            lines += [f"- {_md_cell(note)}" for note in table.notes]
    return "\n".join(lines) + "\n"


def to_csv(table: ReportTable) -> str:
    """One table as CSV: rounded values without marks, plus source, cell and flags columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns + ["source", "cell", "flags"])
    for row in table.rows:
        flags = sorted({m for v in row.values for m in v.marks})
        writer.writerow(
            [plain_text(v.text, v.marks) for v in row.values]
            + [row.source, row.cell_id or "", "".join(flags)]
        )
    return buffer.getvalue()


def table_json(table: ReportTable) -> dict[str, Any]:
    return {
        "key": table.key,
        "title": table.title,
        "columns": table.columns,
        "rows": [
            {
                "source": row.source,
                "cell": row.cell_id,
                "values": dict(zip(table.columns, (v.raw for v in row.values), strict=True)),
                "text": dict(zip(table.columns, (v.text for v in row.values), strict=True)),
            }
            for row in table.rows
        ],
        "notes": table.notes,
    }


def to_json(results: RunResults, tables: list[ReportTable]) -> str:
    payload = {"run": run_summary(results), "tables": [table_json(t) for t in tables]}
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def write_report(
    run_dir: Path, formats: list[str], *, with_paper: bool = False, plots: bool = True
) -> list[Path]:
    """Write the requested formats (and the plots) under RUN_DIR/report/; return the paths."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UserError(f"unknown report format {unknown[0]!r} (choose from {', '.join(FORMATS)})")
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    tables = build_tables(results, with_paper=with_paper)
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plot_files: dict[str, dict[str, Path]] = {}
    if plots:
        from harness.report.plots import write_plots

        plot_files = write_plots(results, out / "plots", with_paper=with_paper)
        written += [p for files in plot_files.values() for p in files.values()]
    for fmt in formats:
        if fmt == "md":
            written.append(_write(out / "report.md", to_markdown(results, tables)))
        elif fmt == "json":
            written.append(_write(out / "report.json", to_json(results, tables)))
        elif fmt == "csv":
            written += [_write(out / f"{t.key}.csv", to_csv(t)) for t in tables]
        elif fmt == "html":
            from harness.report.html import to_html

            written.append(_write(out / "report.html", to_html(results, tables, plot_files)))
    return written


def _write(path: Path, text: str) -> Path:
    return write_atomic(path, text)
