"""The CLI's promises: bad input gives one clear line and exit 2, and changes nothing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def harness(*args: str, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != ".lock":
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_misspelt_key_in_config_and_wrong_type_in_registry(tmp_path):
    config = tmp_path / "exp.toml"
    config.write_text('sizes = ["7b"]\nmethod = ["lora"]\n')
    result = harness("plan", "--config", str(config))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: config {config}: unknown key 'method'; did you mean 'methods'?"
    )
    registry = tmp_path / "reg.toml"
    registry.write_text('[sizes.7b]\nhidden_size = "wide"\n')
    result = harness("plan", "--registry", str(registry))
    assert result.returncode == 2
    assert "[sizes.7b] hidden_size: must be an integer, got 'wide'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_locked_store_refuses_and_changes_nothing(tmp_path):
    import fcntl

    sys.path.insert(0, str(Path(__file__).parent))
    import _core_fakes as fakes

    (tmp_path / "reg.toml").write_text(fakes.REGISTRY)
    (tmp_path / "exp.toml").write_text(fakes.EXPERIMENT)
    plugin_dir = tmp_path / "plug"
    plugin_dir.mkdir()
    _install_fakes_as_entry_point(plugin_dir)
    env = {
        "PYTHONPATH": f"{plugin_dir}{os.pathsep}{Path(__file__).parent}",
        "FAKE_LEDGER": str(tmp_path / "ledger"),
    }
    run = [
        "run",
        "--config",
        str(tmp_path / "exp.toml"),
        "--registry",
        str(tmp_path / "reg.toml"),
        "--out",
        str(tmp_path / "run"),
    ]
    first = harness(*run, env=env)
    assert first.returncode == 0, first.stderr + first.stdout
    before = _tree_digest(tmp_path / "run")
    with open(tmp_path / "run" / "store" / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write("pid 4242 on testhost")
        handle.flush()
        second = harness(*run, env=env)
    assert second.returncode == 2
    assert "is locked by another run" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert _tree_digest(tmp_path / "run") == before


def _install_fakes_as_entry_point(target: Path) -> None:
    """A real installed distribution (dist-info + entry point) holding the fake plugins."""
    dist = target / "harness_fakes-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: harness-fakes\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness]\nfakes = _core_fakes\n")


def test_plan_shows_paper_cells_and_shared_stage1(tmp_path):
    result = harness(
        "plan",
        "--matrix",
        "sizes=33b,65b",
        "methods=lora,qlora",
        "--json",
        "--out",
        str(tmp_path / "p"),
    )
    assert result.returncode == 0, result.stderr
    import json

    body = json.loads(result.stdout)
    assert len(body["cells"]) == 4
    assert body["steps"]["stage1"] == {"total": 2, "done": 0}
    assert body["steps"]["stage2"] == {"total": 4, "done": 0}
    assert not (tmp_path / "p").exists()  # planning writes nothing


def test_installed_package_plugin_is_listed_and_blockable(tmp_path):
    import json

    _install_fakes_as_entry_point(tmp_path)
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{Path(__file__).parent}"}
    listed = json.loads(harness("plugins", "--json", env=env).stdout)
    rows = {(r["kind"], r["name"]): r for r in listed["registered"]}
    assert rows[("benchmark", "fakebench")]["package"] == "harness-fakes"
    assert rows[("benchmark", "fakebench")]["version"] == "0.1"
    assert rows[("benchmark", "llava-bench")]["package"] == "lmm-harness"
    blocked = json.loads(
        harness("plugins", "--json", env={**env, "HARNESS_BLOCK_PLUGINS": "fakes"}).stdout
    )
    assert ("benchmark", "fakebench") not in {(r["kind"], r["name"]) for r in blocked["registered"]}
    assert blocked["blocked"] == ["fakes"]


def test_two_plugins_registering_one_name_is_an_error(tmp_path):
    (tmp_path / "dup_plugin.py").write_text(
        textwrap.dedent("""
        from harness.hookspecs import hookimpl
        import _core_fakes

        @hookimpl
        def register_benchmarks(register):
            register(_core_fakes.FakeBench())
    """)
    )
    _install_fakes_as_entry_point(tmp_path)
    dup = tmp_path / "harness_dup-2.0.dist-info"
    dup.mkdir()
    (dup / "METADATA").write_text("Metadata-Version: 2.1\nName: harness-dup\nVersion: 2.0\n")
    (dup / "entry_points.txt").write_text("[harness]\nzdup = dup_plugin\n")
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{Path(__file__).parent}"}
    result = harness("plan", "--benchmarks", "fakebench", env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (
        "two plugins register the benchmark 'fakebench': harness-fakes (fakes) and "
        "harness-dup (zdup)" in result.stderr
    )


def test_help_and_plugins_do_not_import_torch():
    code = (
        "import sys; from harness.cli.app import app; from harness.plugins import get_plugins; "
        "get_plugins(); print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False False", result.stderr


def test_version():
    result = harness("--version")
    assert result.returncode == 0 and result.stdout.startswith("harness 0.1.0")


def test_a_hook_that_raises_refuses_only_its_plugin(tmp_path):
    (tmp_path / "broken_plugin.py").write_text(
        textwrap.dedent("""
        from harness.hookspecs import hookimpl

        @hookimpl
        def register_benchmarks(register):
            raise RuntimeError("cannot find my data")
    """)
    )
    dist = tmp_path / "harness_broken-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: harness-broken\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text("[harness]\nbroken = broken_plugin\n")
    result = harness("plugins", "--json", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0
    import json

    body = json.loads(result.stdout)
    assert any(r["name"] == "llava-bench" for r in body["registered"])
    assert body["refused"] == [
        "plugin 'broken' from harness-broken 1.2 failed in register_benchmarks: "
        "RuntimeError: cannot find my data"
    ]
