"""`harness judge-agreement`: re-judge a run's samples with two judges, report agreement."""

from __future__ import annotations

import json
import re

import pytest
from _judges_fixtures import KEY, KEY_ENV, StubBenchmark, pairwise_request
from _judges_server import FakeChatServer
from harness_plugins.judges.reference_judge import ReferenceJudge

from harness.cli.judge_agreement import agreement, cohen_kappa, load_requests, ranks
from harness.judging.client import judge_all
from harness.protocols import JudgeRequest


def varied_request(i: int, run: int = 0) -> JudgeRequest:
    """Even items answer exactly the reference (reference judge: 10), odd ones nothing (1)."""
    base = pairwise_request(i, run=run)
    answer = "a red circle" if i % 2 == 0 else ""
    return JudgeRequest(**{**base.__dict__, "facts": {**base.facts, "answer": answer}})


def write_run(run_dir, n_items: int = 6, runs: int = 2):
    """samples/<cell>/llava-bench.jsonl lines as the score step writes them."""
    outcomes = [
        judge_all(
            StubBenchmark(), ReferenceJudge(), [varied_request(i, r) for i in range(n_items)], None
        )
        for r in range(runs)
    ]
    path = run_dir / "samples" / "cell-a" / "llava-bench.jsonl"
    path.parent.mkdir(parents=True)
    lines = [
        {"id": f"q{i}", "text": "answer", "judge": [o.records[f"q{i}"].to_json() for o in outcomes]}
        for i in range(n_items)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_loads_requests_per_benchmark_cell_and_run(tmp_path):
    write_run(tmp_path)
    groups = load_requests(tmp_path)
    assert sorted(groups) == [("llava-bench", "cell-a", 0), ("llava-bench", "cell-a", 1)]
    assert groups[("llava-bench", "cell-a", 1)][2] == varied_request(2, 1)


def test_cli_reports_agreement_between_reference_and_api_judge(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from harness.cli.app import app

    monkeypatch.setenv(KEY_ENV, KEY)
    write_run(tmp_path)

    def reply(messages):
        i = int(re.search(r"item-(\d+):", messages[-1]["content"]).group(1))
        return "8 10\nclose" if i % 2 == 0 else "8 2\nweak"

    with FakeChatServer(reply=reply, expected_key=KEY) as server:
        args = ["judge-agreement", str(tmp_path), "--judges", "reference,openai:gpt-4-0613"]
        args += ["--base-url", server.base_url, "--api-key-env", KEY_ENV]
        args += ["--out", str(tmp_path / "agreement.json")]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert server.requests == 12
        again = CliRunner().invoke(app, args)  # the store's cache answers the second time
        assert again.exit_code == 0 and server.requests == 12
    report = json.loads((tmp_path / "agreement.json").read_text())
    stats = report["benchmarks"]["llava-bench"]
    assert stats["n"] == 12 and stats["failed"] == [0, 0]
    assert stats["exact_agreement"] == 0.5  # 10 = 10 on even items, 1 vs 2 on odd ones
    assert stats["mean_abs_diff"] == 0.5
    assert stats["pearson"] == pytest.approx(1.0) and stats["spearman"] == pytest.approx(1.0)
    assert report["judges"][0] == {
        "name": "reference",
        "snapshot": "reference-v1",
        "official": False,
    }
    assert "llava-bench" in result.output and "1.000" in result.output
    assert KEY not in result.output and KEY not in (tmp_path / "agreement.json").read_text()


def test_statistics():
    assert ranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]
    assert cohen_kappa(list("AABB"), list("AABB")) == 1.0
    assert cohen_kappa(list("AABB"), list("ABAB")) == 0.0
    letters = agreement([("A", "A"), ("B", "C")])
    assert letters["exact_agreement"] == 0.5 and "pearson" not in letters
    assert agreement([(1.0, 2.0), (1.0, 3.0)])["pearson"] is None  # constant side: undefined
