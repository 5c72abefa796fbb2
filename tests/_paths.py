"""Paths tests share: the study's protocol files, beside the project as `../shared/upstream`."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT.parent / "shared" / "upstream"
