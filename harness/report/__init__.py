"""Reports: the study's tables in the terminal, Markdown/CSV/JSON/HTML exports, plots, and
comparisons of two runs with paired bootstrap intervals.

Imports stay light here (no matplotlib) so that `harness --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.results import RunResults


def render(results: RunResults, *, width: int | None = None, with_paper: bool = False) -> list:
    """The report as a list of rich renderables (tables with their judge/protocol notes)."""
    from harness.report.terminal import render as _render

    return _render(results, width=width, with_paper=with_paper)


def render_text(results: RunResults, *, width: int = 100, with_paper: bool = False) -> str:
    """The report as plain text at a fixed width."""
    from harness.report.terminal import render_text as _render_text

    return _render_text(results, width=width, with_paper=with_paper)


def print_report(
    run_dir: str | Path, *, width: int | None = None, with_paper: bool = False, console: Any = None
) -> None:
    """Print RUN_DIR/results.json as the study's tables."""
    from harness.report.terminal import print_report as _print_report

    _print_report(run_dir, width=width, with_paper=with_paper, console=console)


def write_report(run_dir: str | Path, formats: list[str], *, with_paper: bool = False) -> list:
    """Write md/csv/json/html exports and the plots under RUN_DIR/report/."""
    from harness.report.exports import write_report as _write_report

    return _write_report(Path(run_dir), formats, with_paper=with_paper)


__all__ = ["render", "render_text", "print_report", "write_report"]
