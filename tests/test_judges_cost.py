"""Judge dollars: registry prices, unknown snapshots, offline judges, estimates, sums."""

from __future__ import annotations

import pytest
from _judges_fixtures import StubBenchmark, pairwise_request
from harness_plugins.judges.reference_judge import ReferenceJudge

from harness.config.registry import load_registry
from harness.judging.client import JudgeOutcome, JudgeUsage, judge_all
from harness.judging.prices import estimate_judge_usd, format_usd, judge_usd
from harness.protocols import JudgeResponse


@pytest.fixture(scope="module")
def prices():
    return load_registry().judges


def test_priced_snapshots(prices):
    # gpt-4-0314: $30 in / $60 out per million tokens
    assert judge_usd("gpt-4-0314", 1_000_000, 0, prices) == pytest.approx(30.0)
    assert judge_usd("gpt-4-0314", 1200, 300, prices) == pytest.approx(0.036 + 0.018)
    assert judge_usd("gpt-4o-2024-08-06", 2_000_000, 1_000_000, prices) == pytest.approx(15.0)


def test_unknown_snapshot_is_unknown_not_free(prices):
    assert judge_usd("gpt-5-preview", 1000, 1000, prices) is None
    assert format_usd(None) == "unknown"
    assert format_usd(judge_usd("gpt-4-0613", 1000, 1000, prices)) == "$0.09"


def test_offline_judges_cost_no_dollars(prices):
    assert judge_usd("reference-v1", 10**6, 10**6, prices) == 0.0
    assert judge_usd("hf:tiny-judge@abc", 10**6, 10**6, prices) == 0.0


def test_plan_estimate(prices):
    # MM-Vet: 218 items x 5 runs, ~1000 prompt tokens, 3 completion tokens, gpt-4-0613
    usd = estimate_judge_usd(218 * 5, 1000, 3, "gpt-4-0613", prices)
    assert usd == pytest.approx((1_090_000 * 30 + 3270 * 60) / 1e6)
    assert estimate_judge_usd(100, 500, 50, "nobody-knows", prices) is None


def test_usage_sums_split_paid_and_cached(prices):
    usage = JudgeUsage()
    usage.add_response(JudgeResponse("a", "8 6", prompt_tokens=1000, completion_tokens=40))
    usage.add_response(JudgeResponse("b", "8 6", prompt_tokens=900, completion_tokens=60))
    usage.add_response(JudgeResponse("c", None, ok=False, error="timeout"))
    usage.add_response(
        JudgeResponse("d", "7 7", prompt_tokens=500, completion_tokens=50, cached=True)
    )
    assert usage.to_json() == {
        "prompt_tokens": 1900,
        "completion_tokens": 100,
        "cached_prompt_tokens": 500,
        "cached_completion_tokens": 50,
        "calls": 3,
        "cache_hits": 1,
    }
    total = JudgeUsage()
    total += usage
    total += usage
    assert total.prompt_tokens == 3800 and total.total_completion_tokens == 300

    outcome = JudgeOutcome(judge={"name": "openai", "snapshot": "gpt-4-0314"}, usage=usage)
    assert outcome.usd(prices) == pytest.approx((1900 * 30 + 100 * 60) / 1e6)
    assert outcome.usd(prices, include_cached=True) == pytest.approx((2400 * 30 + 150 * 60) / 1e6)


def test_reference_judge_outcome_costs_zero(prices):
    out = judge_all(
        StubBenchmark(), ReferenceJudge(), [pairwise_request(i) for i in range(3)], None
    )
    assert out.usage.calls == 3 and out.usd(prices) == 0.0


def test_calibrate_fits_each_cell_with_its_own_hardware(tmp_path, monkeypatch):
    """A matrix over hardware: the H100 cell's efficiency uses the H100's peak, not the A100's
    (the run's first hardware)."""
    import json
    import math

    from harness.cost.calibrate import calibrate
    from harness.results import CellResult, RunResults, TrainRecord

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    record = TrainRecord(stage="stage2", method="lora", wall_s=3600.0, gpus=8, tokens=10_000_000)
    cells = [
        CellResult(
            id=cid, axes={}, spec_sha256="x", model={"params_b": 13.0}, train={"stage2": record}
        )
        for cid in ("on_a100", "on_h100")
    ]
    run = tmp_path / "run"
    run.mkdir()
    RunResults(
        harness_version="0",
        created="now",
        experiment={},
        hardware={"peak_tflops_bf16": 312.0},
        cells=cells,
    ).write(run / "results.json")
    peaks = {"on_a100": 312.0, "on_h100": 989.0}
    plan = {"cells": {cid: {"hardware": {"peak_tflops_bf16": p}} for cid, p in peaks.items()}}
    (run / "plan.json").write_text(json.dumps(plan))
    flops = 4 * 13e9 * 1e7
    each = [flops / (3600 * 8 * p * 1e12) for p in peaks.values()]
    assert calibrate([run])["lora"] == pytest.approx(math.sqrt(each[0] * each[1]))
