"""One self-contained HTML page: the tables, their notes and the plots inlined as data URIs
(no external stylesheet, script, font or image), so it can be mailed or archived as one file."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from harness.report.build import run_summary
from harness.report.table import ReportTable
from harness.results import RunResults

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #bbb; padding: 0.25rem 0.6rem; }
th { background: #e8eef7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.paper td { color: #555; font-style: italic; background: #f6f6f6; }
ul.notes { color: #444; font-size: 0.85rem; } .plots img { max-width: 48%; margin: 0.5rem; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0 1rem; }
"""


def _table_html(table: ReportTable) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = "".join(
            f'<td class="num">{esc(v.text)}</td>'
            if isinstance(v.raw, int | float)
            else f"<td>{esc(v.text)}</td>"
            for v in row.values
        )
        body.append(f'<tr class="{esc(row.source)}">{cells}</tr>')
    notes = "".join(f"<li>{esc(n)}</li>" for n in table.notes)
    return (
        f'<section id="{esc(table.key)}"><h2>{esc(table.title)}</h2>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + "</section>"
    )


def _plot_img(name: str, files: dict[str, Path]) -> str:
    """The SVG as a data URI (keeps each plot's ids apart); the PNG if there is no SVG."""
    kind = "svg" if "svg" in files else "png"
    mime = "image/svg+xml" if kind == "svg" else "image/png"
    data = base64.b64encode(files[kind].read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(name)}" src="data:{mime};base64,{data}">'


def to_html(
    results: RunResults, tables: list[ReportTable], plots: dict[str, dict[str, Path]]
) -> str:
    esc = html.escape
    title = f"Results: {results.experiment.get('name', 'custom')}"
    summary = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in run_summary(results).items()
    )
    plot_html = "".join(_plot_img(name, files) for name, files in plots.items())
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body>"
        f"<h1>{esc(title)}</h1><dl>{summary}</dl>"
        + "".join(_table_html(t) for t in tables)
        + (f'<section class="plots"><h2>Plots</h2>{plot_html}</section>' if plot_html else "")
        + "</body></html>\n"
    )
