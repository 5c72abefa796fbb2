"""`python -m harness` runs the CLI."""

from harness.cli.app import main

main()
