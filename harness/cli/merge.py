"""`harness merge CKPT --out DIR`: fold LoRA/QLoRA adapters into a plain transformers model."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("merge")
    def merge(
        ckpt: Path = typer.Argument(..., help="a LoRA or QLoRA stage-2 output folder"),
        out: Path = typer.Option(..., "--out", help="where to write the merged model"),
    ) -> None:
        """Merge a LoRA/QLoRA training output into a plain LLaVA folder (transformers layout)."""
        from harness.train.adapters import merge_adapter

        path = merge_adapter(ckpt, out)
        typer.echo(f"merged model written to {path}")
