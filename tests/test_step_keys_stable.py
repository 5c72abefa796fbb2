"""Step keys stay what they were: a finished store is reused only while every step's key is
unchanged, so code that moves or is rewritten must leave the keys alone.

The keys of two plans are pinned in tests/data/step_keys.json: the default experiment, and a
matrix that reaches the other key paths (seeds, controls, ranks, ZeRO, two-rank hardware). A
change that means to give steps new keys (a recipe's version bump, a new field in a spec)
rewrites the file on purpose:

    .venv/bin/python tests/test_step_keys_stable.py

Both plans are made without protocol files (no mirror, an empty cache), so each benchmark's keys
name its fallback and the pins hold on every machine.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

PINNED = Path(__file__).parent / "data" / "step_keys.json"
PLANS = {
    "default": [],
    "matrix": [
        "seed=0,1",
        "control=none,shuffled-images",
        "methods=full,lora",
        "rank=8",
        "zero=3",
        "hardware=cpu-2",
    ],
}


def step_keys(out: Path) -> dict[str, dict[str, str]]:
    """Each pinned plan's step id -> key."""
    from harness.plan.build import Options, build_plan
    from harness.plugins import get_plugins

    keys = {}
    for name, matrix in PLANS.items():
        plan = build_plan(Options(matrix=matrix, out=out / name), get_plugins())
        keys[name] = {step.id: step.key for step in plan.steps}
    return keys


@pytest.fixture
def no_protocol_files(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_ASSETS_MIRROR", raising=False)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))


def test_step_keys_are_the_pinned_ones(tmp_path, no_protocol_files):
    pinned = json.loads(PINNED.read_text())
    keys = step_keys(tmp_path)
    for name in PLANS:
        assert sorted(keys[name]) == sorted(pinned[name]), f"{name}: other steps were planned"
        changed = [sid for sid, key in keys[name].items() if pinned[name][sid] != key]
        assert not changed, f"{name}: {len(changed)} step keys changed, first {changed[:3]}"


if __name__ == "__main__":  # rewrite the pins, on purpose
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.pop("HARNESS_ASSETS_MIRROR", None)
        os.environ["HARNESS_CACHE"] = str(Path(tmp) / "cache")
        PINNED.write_text(json.dumps(step_keys(Path(tmp)), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINNED}", file=sys.stderr)
