"""A plugin cannot take the command line down: clashes, wrong hook arguments, misspelt hooks.

The misbehaving plugins are installed as real distributions (dist-info folders on the path), so
the harness finds them through their entry points exactly as it would after `pip install`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _plugins_fakes import install_dist

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    # the same entry-point name as the built-in LoRA, and a backend registered as "lora"
    install_dist(
        site, "harness-lora", "0.1.0", {"backend_lora": "_plugins_fakes:ClashingLoraPlugin"}
    )
    install_dist(
        site, "harness-wrongarg", "0.2.0", {"wrongarg": "_plugins_fakes:WrongArgumentPlugin"}
    )
    install_dist(
        site, "harness-misspelt", "0.3.0", {"misspelt": "_plugins_fakes:MisspeltHookPlugin"}
    )
    return site


def harness(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(TESTS)])}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_plugins_lists_everything_and_names_each_problem(site):
    listed = harness(site, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    registered = {(r["kind"], r["name"], r["package"]) for r in body["registered"]}
    assert ("backend", "lora", "lmm-harness") in registered  # the built-in stays listed
    assert ("benchmark", "mmlu", "lmm-harness") in registered
    assert body["clashes"] == [
        "two plugins register the backend 'lora': lmm-harness (backend_lora) and harness-lora "
        "(backend_lora); rename the backend in harness-lora (its `name`) or uninstall one of them"
    ]
    refused = "\n".join(body["refused"])
    assert (
        "entry point 'backend_lora' is declared by both lmm-harness and harness-lora: rename it "
        "in harness-lora's [project.entry-points.harness]" in refused
    )
    assert "plugin 'wrongarg' from harness-wrongarg 0.2.0 refused:" in refused
    assert "{'reg'} are declared in the hookimpl but can not be found in the hookspec" in refused
    assert (
        "plugin 'misspelt' from harness-misspelt 0.3.0 implements unknown hook "
        "'register_benchmark' (did you mean register_benchmarks?)" in refused
    )
    table = harness(site, "plugins")
    assert (
        table.returncode == 0 and "clash: two plugins register the backend 'lora'" in table.stdout
    )


@pytest.mark.parametrize("command", ["plan", "run"])
def test_a_command_that_uses_the_clashing_name_exits_2_with_one_line(site, tmp_path, command):
    out = tmp_path / "run"
    used = harness(site, command, "--matrix", "sizes=tiny-1m", "methods=lora", "--out", str(out))
    assert used.returncode == 2, used.stdout + used.stderr
    assert used.stderr.strip().splitlines() == [
        "error: two plugins register the backend 'lora': lmm-harness (backend_lora) and "
        "harness-lora (backend_lora); rename the backend in harness-lora (its `name`) or "
        "uninstall one of them"
    ]
    assert not out.exists()  # refused before anything is written


def test_what_the_clash_does_not_touch_still_works(site, tmp_path):
    other = harness(site, "plan", "--matrix", "sizes=tiny-1m", "methods=full")
    assert other.returncode == 0, other.stderr
    # a plugin refused for its hook's arguments registers nothing: using it is one line, exit 2
    out = ["--out", str(tmp_path / "run")]
    refused = harness(site, "run", "--matrix", "sizes=tiny-1m", "methods=fake", *out)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "unknown backend 'fake'" in refused.stderr
    assert refused.stderr.rstrip().endswith("; `harness plugins` lists 3 plugin problems")


def test_new_refuses_a_registered_name_and_names_entry_points_after_the_package(tmp_path):
    from harness.cli.scaffold import package_files, write_package
    from harness.errors import UserError

    with pytest.raises(UserError, match="a backend named 'lora' is already registered"):
        write_package("backend", "lora", tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()
    pyproject = package_files("backend", "dora")["pyproject.toml"]
    assert 'harness_dora = "harness_dora.plugin"' in pyproject
