"""`harness verify RUN_DIR`: check every finished step of a run against its manifest's sha256s.

Reuse checks only that each file is there with its size; this reads every byte. A damaged step
is named in one line and set aside under the store's `damaged/` folder, so the next run redoes
it instead of trusting it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.errors import UserError


def verify_run(run_dir: Path, echo=typer.echo) -> int:
    """Check the run's finished steps; set damaged ones aside. The number of damaged steps."""
    from harness.plan.plan_file import Plan
    from harness.support import locks

    if not (run_dir / "plan.json").is_file():
        raise UserError(f"{run_dir} is not a run folder (no plan.json)")
    try:
        plan = Plan.load(run_dir)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{run_dir / 'plan.json'} cannot be read: {exc}") from None
    store = plan.store
    run_lock = (run_dir / ".lock", f"run folder {run_dir} is locked by a run in progress")
    checked = damaged = unlisted = 0
    with locks.holding(run_lock, store.lock_target()):
        for step in plan.steps:
            if not store.step_dir(step.key).is_dir():
                continue
            checked += 1
            problem = store.damage(step.key, hashes=True)
            if problem is not None:
                damaged += 1
                moved = store.set_aside(step.key)
                echo(f"damaged {step.id}: {problem}; moved to {moved}, the next run redoes it")
            elif "files" not in store.manifest(step.key):
                unlisted += 1
    old = f", {unlisted} from before file lists (not checkable)" if unlisted else ""
    echo(
        f"verified {checked} finished step(s) of {len(plan.steps)}: "
        + (f"{damaged} damaged" if damaged else "all intact")
        + old
    )
    return damaged


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify(
        run_dir: Annotated[Path, typer.Argument(help="a run folder (holding plan.json)")],
    ) -> None:
        """Check every finished step's files against their sha256s; set damaged steps aside."""
        raise typer.Exit(1 if verify_run(run_dir.resolve()) else 0)
