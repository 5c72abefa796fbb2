"""A fresh clone is the reference machine: the suite needs nothing beside the project's folder.

A clone on a user's machine has no mirror of the protocol files beside it and an empty assets
cache. The copy below is made into a folder that holds nothing else, and the suite runs there
with no mirror and an empty cache: collection must succeed, and the tests that need protocol
files must skip with the reason that names `harness assets fetch`, not fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _paths import ROOT, SKIP_REASON

SKIPPED = {".git", ".venv", "runs", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache"}


def _copy_project(target: Path) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        out = set(names) & SKIPPED
        if Path(folder) == ROOT / "bench":
            out |= {n for n in names if n == "out" or n.startswith(".venv")}
        return out | {n for n in names if n.endswith(".egg-info")}

    shutil.copytree(ROOT, target, ignore=ignore)
    return target


def _modules_using_protocol_files() -> list[str]:
    tests = sorted((ROOT / "tests").glob("test_*.py"))
    return [p.name for p in tests if re.search(r"protocol_(file|mirror)\(", p.read_text())]


@pytest.mark.slow
def test_suite_in_a_lone_copy_skips_protocol_tests_and_fails_nothing(tmp_path):
    clone = _copy_project(tmp_path / "alone" / "project")
    assert [p.name for p in clone.parent.iterdir()] == ["project"]
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_ASSETS_MIRROR"}
    env["HARNESS_CACHE"] = str(tmp_path / "empty-cache")
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]

    collect = subprocess.run(
        [*base, "--collect-only"], cwd=clone, env=env, capture_output=True, text=True
    )
    assert collect.returncode == 0, collect.stdout[-3000:] + collect.stderr[-3000:]
    assert "error" not in collect.stdout.lower().splitlines()[-1]

    modules = _modules_using_protocol_files()
    assert len(modules) >= 5  # the benchmark, assets and synthetic-world tests
    run = subprocess.run(
        [*base, "-rs", "-m", "not slow", *(f"tests/{m}" for m in modules)],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    summary = run.stdout[-4000:] + run.stderr[-2000:]
    assert run.returncode == 0, summary
    assert re.search(r"\d+ passed", summary) and re.search(r"\d+ skipped", summary), summary
    skips = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips and all(SKIP_REASON in line for line in skips), summary


# A path beside the project (the tests once read the protocol files from a folder there).
OUTSIDE = re.compile(r"ROOT\.parent\b|\.parents\[[2-9]\]|[\"']\.\./|[\"']shared[\"']")


def test_no_test_reaches_beside_the_project():
    """The lone copy above runs the modules that ask for protocol files; this catches a module
    that would read a folder beside the project without asking, wherever it is in tests/."""
    offending = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted((ROOT / "tests").glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE.search(line) and "OUTSIDE = re.compile" not in line
    ]
    assert not offending, "tests must reach protocol files through _paths:\n" + "\n".join(offending)
