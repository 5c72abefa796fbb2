"""`harness new benchmark|backend|judge NAME`: a plugin package that installs and tests at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("new")
    def new(
        kind: Annotated[str, typer.Argument(help="benchmark | backend | judge")],
        name: Annotated[str, typer.Argument(help="the plugin's name, e.g. my-bench")],
        folder: Annotated[
            Path | None,
            typer.Option("--dir", help="where to write the package (default ./harness-NAME)"),
        ] = None,
    ) -> None:
        """Write a plugin package skeleton: pyproject with the entry point, plugin, test."""
        from harness.cli.scaffold import placeholders, write_package

        target = write_package(kind, name, folder)
        values = placeholders(kind, name)
        typer.echo(f"wrote {values['__DIST__']} ({kind} {name!r}) in {target}")
        typer.echo(f"  pip install -e {target}  &&  python -m pytest {target / 'tests'}")
