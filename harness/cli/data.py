"""`harness data synth --out DIR [--seed N] [--scale small|medium]`: write the synthetic world."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Generate and inspect training and evaluation data.")
    app.add_typer(data_app, name="data")

    @data_app.command("synth")
    def synth_command(
        out: Path = typer.Option(..., "--out", help="folder to write the world into"),
        seed: int = typer.Option(0, help="seed of the world (same seed, same bytes)"),
        scale: str = typer.Option("small", help="small (the default run) or medium"),
    ) -> None:
        """Write the synthetic world: images, stage-1/2 data and the five benchmark mini sets."""
        import json

        from harness.data.synthetic import write_world
        from harness.errors import UserError
        from harness.plan.preflight import check_folder

        if seed < 0:
            raise UserError(f"--seed {seed}: must be >= 0")
        check_folder("--out", out)
        root = write_world(out, seed=seed, scale=scale)
        counts = json.loads((root / "world.json").read_text())["counts"]
        for name, count in sorted(counts.items()):
            typer.echo(f"{name}\t{count}")
        typer.echo(f"wrote {root}")
