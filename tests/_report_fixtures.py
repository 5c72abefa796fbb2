"""Shared helpers for the report tests: the hand-made run, snapshot files, small synthetic runs."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from rich.console import Console

from harness.report.table import ReportTable
from harness.report.terminal import table_renderables
from harness.results import BenchmarkResult, CellResult, RunResults

DATA = Path(__file__).parent / "data" / "report"
STUDY_RUN = DATA / "study"
SNAPSHOTS = DATA / "snapshots"
WIDTH = 100


def study_results() -> RunResults:
    return RunResults.read(STUDY_RUN / "results.json")


def table_text(table: ReportTable, width: int = WIDTH) -> str:
    """One table as the terminal shows it in plain mode, with its title and notes."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=False,
        no_color=True,
        color_system=None,
        highlight=False,
        emoji=False,
    )
    for renderable in table_renderables(table, width=width, plain=True):
        console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def assert_snapshot(name: str, text: str) -> None:
    """Compare with tests/data/report/snapshots/NAME; HARNESS_UPDATE_SNAPSHOTS=1 rewrites it."""
    path = SNAPSHOTS / name
    if os.environ.get("HARNESS_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}; run with HARNESS_UPDATE_SNAPSHOTS=1 to write it"
    assert text == path.read_text(encoding="utf-8"), f"snapshot {name} differs"


def benchmark(
    name: str,
    value: float,
    *,
    judge: dict | None = None,
    protocol: dict | None = None,
    primary: str = "overall",
) -> BenchmarkResult:
    return BenchmarkResult(
        benchmark=name,
        version="1",
        primary=primary,
        metrics={primary: value},
        n_items=60,
        protocol=protocol or {"name": f"{name}-official", "official": True},
        judge=judge
        if judge is not None
        else {"name": "openai", "snapshot": "gpt-4-0314", "official": True},
    )


def write_run(run_dir: Path, cells: list[CellResult], samples: dict | None = None) -> Path:
    """A run directory: results.json plus samples/<cell>/<benchmark>.jsonl lines."""
    run_dir.mkdir(parents=True, exist_ok=True)
    RunResults(
        harness_version="0.1.0",
        created="2024-05-01T00:00:00+00:00",
        experiment={"name": run_dir.name},
        cells=cells,
    ).write(run_dir / "results.json")
    for (cell_id, bench), lines in (samples or {}).items():
        path = run_dir / "samples" / cell_id / f"{bench}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run_dir


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run `harness ARGS` in process through the real entry point (exit codes included)."""
    import sys

    from harness.cli.app import main

    saved = sys.argv
    sys.argv = ["harness", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = saved
    captured = capsys.readouterr()
    return code, captured.out, captured.err
