"""Built-in plugins are found exactly as third-party ones: through the `harness` entry points.

Every entry point in pyproject.toml must load and register something visible in
`harness plugins --json`, and every built-in module with a hook must have an entry point.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
    "entry-points"
]["harness"]


@cache
def listing() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_BLOCK_PLUGINS"}
    result = subprocess.run(
        [sys.executable, "-m", "harness", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_project_declares_its_plugins_as_entry_points():
    assert ENTRY_POINTS, "pyproject.toml has no [project.entry-points.harness]"
    for name, target in ENTRY_POINTS.items():
        module = target.split(":")[0]
        assert module.startswith("harness_plugins."), f"{name}: {target} is not a built-in"
        path = ROOT / "plugins" / Path(*module.split(".")[1:])
        assert path.with_suffix(".py").is_file(), f"entry point {name}: no file for {module}"


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_every_builtin_entry_point_is_visible_in_harness_plugins(entry_point):
    body = listing()
    refused = [m for m in body["refused"] if f"plugin {entry_point!r} " in m]
    assert not refused, refused[0]
    rows = [r for r in body["registered"] if r["plugin"] == entry_point]
    assert rows, (
        f"entry point {entry_point!r} registers nothing visible (if it was added to "
        "pyproject.toml recently, reinstall: pip install -e .)"
    )
    assert {(r["package"], r["version"]) for r in rows} == {("lmm-harness", rows[0]["version"])}


def test_every_builtin_module_with_a_hook_has_an_entry_point():
    declared = {target.split(":")[0] for target in ENTRY_POINTS.values()}
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        if re.search(r"^@hookimpl", path.read_text(), re.M):
            relative = path.relative_to(ROOT / "plugins").with_suffix("")
            module = ".".join(("harness_plugins", *relative.parts))
            assert module in declared, f"{path} has hooks but no entry point in pyproject.toml"


def test_listing_shows_each_kind_with_package_and_version():
    rows = listing()["registered"]
    assert {r["kind"] for r in rows} == {"backend", "benchmark", "judge", "executor"}
    assert all(r["package"] and r["version"] and r["name"] for r in rows)
