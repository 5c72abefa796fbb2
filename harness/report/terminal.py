"""Rich rendering for the terminal: adapts to the width, and to no-colour / non-TTY output
(plain ASCII tables, no escape codes) so that CI logs stay readable."""

from __future__ import annotations

import io
from pathlib import Path

from rich import box
from rich.console import Console, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from harness.report.build import build_tables, run_summary
from harness.report.table import ReportTable
from harness.results import RunResults

DEFAULT_WIDTH = 100
WRAP_TO = 24  # text columns may wrap to this width before the layout turns compact


def natural_width(table: ReportTable, columns: list[str], *, wrap: bool = False) -> int:
    """Width the table needs; with `wrap`, text columns may wrap down to WRAP_TO characters."""
    widths = [len(c) for c in columns]
    for i in range(len(columns)):
        for row in table.rows:
            text = row.values[i].text
            if wrap and not is_numeric_column(table, i):
                longest_word = max((len(w) for w in text.split()), default=0)
                needed = min(len(text), max(longest_word, WRAP_TO))
            else:
                needed = len(text)
            widths[i] = max(widths[i], needed)
    return sum(widths) + 3 * len(widths) + 1


def is_numeric_column(table: ReportTable, index: int) -> bool:
    raws = [row.values[index].raw for row in table.rows]
    return any(r is not None for r in raws) and all(
        r is None or isinstance(r, int | float) and not isinstance(r, bool) for r in raws
    )


def to_rich(table: ReportTable, *, width: int, plain: bool) -> Table:
    """One report table as a rich Table: short headers when the full ones would not fit, and
    when even those do not, no outer edge, no padding and no 'Failed' column (the notes keep
    the failure counts)."""
    columns = table.columns
    if natural_width(table, columns) > width:
        columns = table.short_columns
    narrow = natural_width(table, columns, wrap=True) > width
    keep = [i for i, name in enumerate(table.columns) if not (narrow and name == "Failed")]
    rich_table = Table(
        box=box.ASCII if plain else box.ROUNDED,
        header_style="" if plain else "bold",
        safe_box=True,
        show_edge=not narrow,
        padding=(0, 0) if narrow else (0, 1),
    )
    for i in keep:
        numeric = is_numeric_column(table, i)
        longest_word = max(
            (len(w) for row in table.rows for w in row.values[i].text.split()), default=1
        )
        rich_table.add_column(
            columns[i],
            justify="right" if numeric else "left",
            no_wrap=numeric,
            overflow="ellipsis" if numeric else "fold",
            min_width=min(longest_word, 20),
        )
    paper_started = False
    for row in table.rows:
        if row.source == "paper" and not paper_started:
            paper_started = True
            rich_table.add_section()
        style = "dim italic" if row.source == "paper" and not plain else None
        rich_table.add_row(*(row.values[i].text for i in keep), style=style)
    return rich_table


def table_renderables(table: ReportTable, *, width: int, plain: bool) -> list[RenderableType]:
    """A table's title, the table, and its notes (judge, protocol, failures, marks)."""
    dim = "" if plain else "dim"
    out: list[RenderableType] = [Text(table.title, style="" if plain else "bold cyan")]
    out.append(to_rich(table, width=width, plain=plain))
    out += [Padding(Text(n, style=dim), (0, 0, 0, 2), expand=False) for n in table.notes]
    return out


def render(
    results: RunResults, *, width: int | None = None, with_paper: bool = False, plain: bool = False
) -> list[RenderableType]:
    """The report as rich renderables: a run header, then each table followed by its notes."""
    width = width or DEFAULT_WIDTH
    summary = run_summary(results)
    header = " | ".join(f"{k} {v}" for k, v in summary.items())
    out: list[RenderableType] = [Text(header, style="" if plain else "bold")]
    for table in build_tables(results, with_paper=with_paper):
        out.append(Text(""))
        out += table_renderables(table, width=width, plain=plain)
    return out


def render_text(
    results: RunResults, *, width: int = DEFAULT_WIDTH, with_paper: bool = False
) -> str:
    """Plain text at a fixed width: what CI logs and snapshot tests see."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=False,
        no_color=True,
        color_system=None,
        highlight=False,
        emoji=False,
        legacy_windows=False,
    )
    for renderable in render(results, width=width, with_paper=with_paper, plain=True):
        console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def make_console(width: int | None = None) -> Console:
    """Rich's own detection: NO_COLOR turns colour off, a pipe gets no escape codes."""
    return Console(width=width, highlight=False, emoji=False)


def print_report(
    run_dir: str | Path,
    *,
    width: int | None = None,
    with_paper: bool = False,
    console: Console | None = None,
) -> None:
    """Print RUN_DIR/results.json as the study's tables (called at the end of `harness run`)."""
    from harness.report.exports import load_results

    results = load_results(Path(run_dir))
    console = console or make_console(width)
    plain = not console.is_terminal
    for renderable in render(
        results, width=width or console.width, with_paper=with_paper, plain=plain
    ):
        console.print(renderable)
