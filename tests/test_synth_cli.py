"""`harness data synth` through typer, and the cached world of synthetic_root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harness.cli.data import register
from harness.data.synthetic import VERSION, generator_digest, synthetic_root
from harness.errors import UserError


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


def test_synth_command_writes_the_world(tmp_path: Path) -> None:
    out = tmp_path / "world"
    result = CliRunner().invoke(_app(), ["data", "synth", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "mmbench\t132" in result.output and f"wrote {out}" in result.output
    manifest = json.loads((out / "world.json").read_text())
    assert manifest["seed"] == 3 and manifest["scale"] == "small"
    for path in (
        "stage1/captions.json",
        "stage2/llava_instruct.json",
        "stage2/sharegpt.json",
        "llava-bench/questions.jsonl",
        "mm-vet/mm-vet.json",
        "mmbench/mmbench_dev_en.tsv",
        "vicuna-80/reference_answer/gpt-4.jsonl",
        "mmlu/geography/test-00000-of-00001.parquet",
    ):
        assert (out / path).is_file(), path


def test_synth_command_rejects_an_unknown_scale(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["data", "synth", "--out", str(tmp_path), "--scale", "xl"])
    assert isinstance(result.exception, UserError)
    assert "unknown synthetic scale 'xl'" in str(result.exception)


def test_synthetic_root_writes_once_and_reuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    root = synthetic_root(seed=1)
    assert root == tmp_path / "synthetic" / f"v{VERSION}-1-small-{generator_digest()}"
    stamp = (root / "world.json").stat().st_mtime_ns
    assert synthetic_root(seed=1) == root
    assert (root / "world.json").stat().st_mtime_ns == stamp
    left = sorted(p.name for p in root.parent.iterdir())
    assert left == sorted([root.name, f".{root.name}.lock"])  # no staging folders left
