"""The `harness` command: its Typer app and one module per command group."""
