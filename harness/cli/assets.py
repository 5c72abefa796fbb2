"""`harness assets fetch|verify [--mirror DIR]`: obtain and check the pinned protocol assets."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    assets_app = typer.Typer(help="Fetch and verify the pinned protocol assets (prompts, sets).")
    app.add_typer(assets_app, name="assets")

    @assets_app.command("fetch")
    def fetch_command(
        names: list[str] = typer.Argument(None, help="asset names (default: all)"),
        mirror: Path = typer.Option(None, help="offline mirror folder (registry `mirror` paths)"),
    ) -> None:
        """Download (or copy from --mirror) each asset and check its sha256 pin."""
        from harness.config import assets

        for name, path in assets.fetch(names or None, mirror=mirror).items():
            typer.echo(f"{name}\tok\t{path}")

    @assets_app.command("verify")
    def verify_command(
        mirror: Path = typer.Option(None, help="check this mirror folder instead of the cache"),
    ) -> None:
        """Check cached (or mirrored) assets against their sha256 pins; exit 1 on any problem."""
        from harness.config import assets

        status = assets.verify(mirror=mirror)
        for name, state in status.items():
            typer.echo(f"{name}\t{state}")
        if any(state != "ok" for state in status.values()):
            raise typer.Exit(1)
