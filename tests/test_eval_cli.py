"""`harness eval --model` on a tiny plain causal LM: results.json and per-sample records."""

from __future__ import annotations

import json

import pytest
from _eval_fixtures import save, tiny_llm
from _paths import protocol_mirror
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


def test_eval_plain_llm_on_synthetic_mmlu(tmp_path, monkeypatch):
    from harness.cli.app import app

    mirror = protocol_mirror(tmp_path / "mirror")  # the official prompt files, or a skip
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    model = save(tiny_llm(), tmp_path / "llm")
    out = tmp_path / "run"
    args = ["eval", "--model", str(model), "--benchmarks", "mmlu", "--out", str(out)]
    args += ["--assets-mirror", str(mirror)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    cell = results["cells"][0]
    mmlu = cell["benchmarks"]["mmlu"]
    assert mmlu["n_items"] == 200 and mmlu["n_failed"] == 0
    assert 0 <= mmlu["metrics"]["micro"] <= 100 and "macro" in mmlu["metrics"]
    assert mmlu["protocol"]["official"] is True and mmlu["protocol"]["shots"] == 5
    assert any(k.startswith("subject/") for k in mmlu["metrics"])
    lines = (out / "samples" / cell["id"] / "mmlu.jsonl").read_text().splitlines()
    sample = json.loads(lines[0])
    assert len(lines) == 200 and len(sample["logliks"]) == 4
    assert sample["n_tokens"] > 0 and sample["seconds"] > 0
    # per-question scores beside the samples: their mean is micro, and compare pairs them
    items = (out / "samples" / cell["id"] / "mmlu.items.jsonl").read_text().splitlines()
    scores = [json.loads(line)["score"][0] for line in items]
    assert len(scores) == 200 and set(scores) <= {0.0, 1.0}
    assert 100 * sum(scores) / 200 == pytest.approx(mmlu["metrics"]["micro"])
    compared = CliRunner().invoke(app, ["compare", str(out), str(out), "--json"])
    (row,) = json.loads(compared.output)["rows"]
    assert row["bootstrap"]["n"] == 200 and row["bootstrap"]["estimate"] == 0.0
