"""The synthetic world written once per test session (seed 0, small), shared by the tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness.data.synthetic import write_world

_WRITTEN: dict[str, Path] = {}


def shared_world(factory: pytest.TempPathFactory) -> Path:
    """The seed-0 small world, written on first use in this session."""
    if "world" not in _WRITTEN:
        _WRITTEN["world"] = write_world(factory.mktemp("world") / "w", seed=0, scale="small")
    return _WRITTEN["world"]


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, keyed by its relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
