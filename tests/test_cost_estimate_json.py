"""The plan's summed estimate is written as `total_estimate` in `harness plan --json` with the
keys it always had: a calibration adds `table4_gpu_usd`, an unpriced judge nulls the dollars."""

from __future__ import annotations

from harness.cost.planner import Totals


def test_priced_totals_write_three_sums():
    total = Totals(gpu_usd=10.0, judge_usd=2.5, total_usd=12.5)
    assert total.as_json() == {"gpu_usd": 10.0, "judge_usd": 2.5, "total_usd": 12.5}
    assert not total.judge_price_unknown


def test_calibrated_totals_add_the_table4_dollars():
    total = Totals(gpu_usd=10.0, judge_usd=0.0, total_usd=10.0, table4_gpu_usd=14.0)
    assert list(total.as_json()) == ["gpu_usd", "judge_usd", "total_usd", "table4_gpu_usd"]
    assert total.as_json()["table4_gpu_usd"] == 14.0


def test_an_unpriced_judge_makes_the_sums_unknown_never_zero():
    total = Totals(gpu_usd=10.0, judge_usd=None, total_usd=None, table4_gpu_usd=0.0)
    assert total.judge_price_unknown
    assert total.as_json() == {
        "gpu_usd": 10.0,
        "judge_usd": None,
        "total_usd": None,
        "table4_gpu_usd": 0.0,
        "judge_price_unknown": True,
    }
