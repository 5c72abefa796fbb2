"""`harness report` and `harness compare`: the study's tables, exports and honest comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run_dir: Path = typer.Argument(..., help="A run directory holding results.json."),
        format: list[str] = typer.Option(
            [],
            "--format",
            "-f",
            help="Write md, csv, json or html (and the plots) under RUN_DIR/report/; repeatable.",
        ),
        with_paper: bool = typer.Option(
            False, "--with-paper", help="Add the study's published rows, labelled 'paper:'."
        ),
        width: int | None = typer.Option(None, "--width", help="Terminal width to lay out for."),
        as_json: bool = typer.Option(False, "--json", help="Print the tables as JSON."),
    ) -> None:
        """Show a run's results as the study's tables (score beside cost, judge, protocol)."""
        from harness.report.build import build_tables
        from harness.report.exports import load_results, to_json, write_report
        from harness.report.terminal import print_report

        check_formats(format)
        if as_json:
            results = load_results(run_dir)
            typer.echo(to_json(results, build_tables(results, with_paper=with_paper)), nl=False)
        else:
            print_report(run_dir, width=width, with_paper=with_paper)
        if format:
            for path in write_report(run_dir, format, with_paper=with_paper):
                typer.echo(f"wrote {path}", err=as_json)

    @app.command("compare")
    def compare(
        run_a: Path = typer.Argument(..., help="The baseline run directory (A)."),
        run_b: Path = typer.Argument(..., help="The run compared with it (B)."),
        cells: list[str] = typer.Option(
            [],
            "--cells",
            help="Cell id in both runs, or ID_A=ID_B; repeatable (default: all "
            "ids the runs share).",
        ),
        force: bool = typer.Option(
            False, "--force", help="Compare even when judges or protocols differ (labelled)."
        ),
        seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
        resamples: int = typer.Option(10_000, "--resamples", help="Bootstrap resamples."),
        as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    ) -> None:
        """Differences per benchmark with paired bootstrap 95% intervals over items."""
        from harness.report.compare import compare_runs, comparison_json
        from harness.report.compare_view import render_comparison
        from harness.report.terminal import make_console

        comparison = compare_runs(
            run_a, run_b, cells=cells or None, force=force, seed=seed, resamples=resamples
        )
        if as_json:
            typer.echo(json.dumps(comparison_json(comparison), indent=2))
            return
        console = make_console()
        for renderable in render_comparison(comparison, plain=not console.is_terminal):
            console.print(renderable)


def check_formats(formats: list[str]) -> None:
    """Refuse an unknown --format before anything is printed or written."""
    from harness.errors import UserError
    from harness.report.exports import FORMATS

    for name in formats:
        if name not in FORMATS:
            raise UserError(f"--format {name!r}: choose from {', '.join(FORMATS)}")
