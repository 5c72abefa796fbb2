"""`harness foundations ship`: build an experiment's tiny foundations afresh and ship them.

The shipped copies (harness/model/shipped/) spare a first run about fifteen minutes of CPU. They
must be exactly what the recipe builds, so this command builds every one from scratch in a
temporary cache (no shipped copy, no user cache) and then makes those folders the shipped set,
pinning each file's sha256. Run it when a foundation's recipe changes (the shipped-foundation
test names the missing keys).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer


def foundation_needs(experiment: str, registry: Path | None = None) -> list[tuple[Any, ...]]:
    """(size, tower, resolution, seed) of every tiny model the experiment's cells use."""
    from harness.plan.build import Options, build_plan
    from harness.plugins import get_plugins

    with tempfile.TemporaryDirectory(prefix="harness-ship-plan-") as tmp:
        opts = Options(experiment=experiment, registry=registry, out=Path(tmp) / "run")
        plan = build_plan(opts, get_plugins())
    needs: dict[str, tuple[Any, ...]] = {}
    for cell in plan.cells.values():
        model = cell.model
        if model.is_tiny:
            need = (model.size, model.tower, model.resolution, model.foundation_seed)
            needs[repr(need)] = need
    return list(needs.values())


def build_fresh(needs: list[tuple[Any, ...]], cache: Path, echo=typer.echo) -> list[Path]:
    """Build every foundation in `needs` into `cache` from scratch; the folders built."""
    from harness.model.foundation import ensure_foundation
    from harness.model.shipped import OFF

    saved = {k: os.environ.get(k) for k in ("HARNESS_CACHE", OFF)}
    os.environ.update({"HARNESS_CACHE": str(cache), OFF: "1"})
    folders: dict[str, Path] = {}
    try:
        for size, tower, resolution, seed in needs:
            started = time.perf_counter()
            parts = ensure_foundation(size, tower, resolution, seed=seed)
            for path in (parts.tokenizer, parts.tower, parts.llm):
                folders[Path(path).name] = Path(path)
            echo(
                f"built {size.name} with {tower.name} at {resolution}px, seed {seed}: "
                f"{time.perf_counter() - started:.0f} s"
            )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return sorted(folders.values(), key=lambda p: p.name)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="the tiny foundation models the project ships", no_args_is_help=True)
    app.add_typer(group, name="foundations")

    @group.command("ship")
    def ship_command(
        experiment: Annotated[str, typer.Option(help="the experiment whose foundations")] = (
            "default"
        ),
        from_cache: Annotated[
            bool,
            typer.Option(
                "--from-cache",
                help="ship the folders your cache already holds, building only the missing ones "
                "(the default builds every one afresh)",
            ),
        ] = False,
    ) -> None:
        """Build the experiment's tiny foundations from scratch and make them the shipped set."""
        from harness.model.shipped import SHIPPED, ship
        from harness.support.paths import cache_dir

        needs = foundation_needs(experiment)
        where = "from your cache" if from_cache else "building afresh"
        typer.echo(f"{len(needs)} tiny model(s) of experiment {experiment!r}: {where}")
        with tempfile.TemporaryDirectory(prefix="harness-ship-") as tmp:
            folders = build_fresh(needs, cache_dir() if from_cache else Path(tmp))
            index = ship(folders)
        total = sum(f.stat().st_size for key in index for f in (SHIPPED / key).iterdir())
        typer.echo(f"shipped {len(index)} folder(s), {total / 1e6:.1f} MB, in {SHIPPED}")
