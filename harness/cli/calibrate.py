"""`harness calibrate RUN_DIR ...`: teach the planner this cluster's measured efficiency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("calibrate")
    def calibrate(run_dirs: Annotated[list[Path], typer.Argument(help="finished run folders")]):
        """Fit the planner's per-method efficiency to finished runs (used by `harness plan`)."""
        from harness.cost.calibrate import calibrate as fit
        from harness.cost.planner import calibration_file

        for method, value in sorted(fit(run_dirs).items()):
            typer.echo(f"{method}: efficiency {value:.3f} (fraction of peak)")
        typer.echo(f"written to {calibration_file()}")
