"""`harness compare`: paired bootstrap intervals over items (checked against intervals worked
out by hand), and the refusal to compare scores from different judges or protocols."""

from __future__ import annotations

import json
import math

import pytest
from _report_fixtures import benchmark, run_cli, write_run

from harness.errors import UserError
from harness.report.bootstrap import paired_mean, paired_ratio
from harness.report.compare import FORCED_LABEL, compare_runs, item_interval
from harness.report.samples import ItemScore, mean_over_runs
from harness.results import CellResult


def test_small_case_interval_by_hand():
    # d = [1, 1, 0, 0]: a resample's mean is Binomial(4, 1/2) / 4, so P(mean=0) = P(mean=1) = 1/16
    # = 6.25% > 2.5%: the 2.5th percentile is exactly 0 and the 97.5th exactly 1.
    interval = paired_mean([6, 6, 6, 6], [7, 7, 6, 6], seed=0)
    assert interval.estimate == 0.5 and interval.n == 4
    assert (interval.low, interval.high) == (0.0, 1.0)
    assert not interval.significant  # four items cannot tell +0.5 from nothing


def test_llava_bench_sized_case_matches_the_normal_approximation():
    # 60 items, 30 of them one point better: mean 0.5, bootstrap sd = sqrt(.5 * .5 / 60) = 0.0645,
    # so the 95% interval is about 0.5 +- 1.96 * 0.0645 = [0.374, 0.626].
    a = [6.0] * 60
    b = [7.0] * 30 + [6.0] * 30
    interval = paired_mean(a, b, seed=1)
    half = 1.96 * math.sqrt(0.25 / 60)
    assert interval.estimate == pytest.approx(0.5)
    assert interval.low == pytest.approx(0.5 - half, abs=0.02)
    assert interval.high == pytest.approx(0.5 + half, abs=0.02)
    assert interval.significant
    assert paired_mean(a, b, seed=1) == interval  # seeded: reruns agree


def test_ratio_statistic_is_llava_bench_own_score():
    interval = paired_ratio([5, 6], [10, 10], [7, 8], [10, 10], seed=0)
    assert interval.estimate == pytest.approx(100 * (15 / 20 - 11 / 20))
    assert interval.low <= interval.estimate <= interval.high


def _cell(cid: str, value: float, **kw) -> CellResult:
    return CellResult(
        id=cid,
        axes={"size": "tiny-1m"},
        spec_sha256="0",
        benchmarks={"mmbench": benchmark("mmbench", value, **kw)},
    )


def _runs(tmp_path, *, judge_b: dict | None = None):
    """A: right on 30 of 60 items; B: the same 30 plus 12 more, and item 59 failed in B."""
    a_scores = [1.0] * 30 + [0.0] * 30
    b_scores = [1.0] * 42 + [0.0] * 18
    a_lines = [{"id": f"q{i}", "score": s} for i, s in enumerate(a_scores)]
    b_lines = [{"id": f"q{i}", "score": [s]} for i, s in enumerate(b_scores)]
    b_lines[59]["score"] = None
    run_a = write_run(tmp_path / "a", [_cell("c1", 50.0)], {("c1", "mmbench"): a_lines})
    run_b = write_run(
        tmp_path / "b", [_cell("c1", 70.0, judge=judge_b)], {("c1", "mmbench"): b_lines}
    )
    return run_a, run_b


def test_compare_two_runs_known_difference(tmp_path):
    run_a, run_b = _runs(tmp_path)
    comparison = compare_runs(run_a, run_b, seed=0)
    (row,) = comparison.rows
    assert row.delta == pytest.approx(20.0) and row.excluded == 1
    interval = row.interval
    # 59 paired items, 12 differ by one: 0-1 scores are reported in points (x100).
    p = 12 / 59
    half = 1.96 * math.sqrt(p * (1 - p) / 59) * 100
    assert interval.n == 59 and interval.statistic == "mean x100"
    assert interval.estimate == pytest.approx(100 * p)
    assert interval.low == pytest.approx(100 * p - half, abs=1.5)
    assert interval.high == pytest.approx(100 * p + half, abs=1.5)
    assert comparison.label is None


def test_refuses_different_judges_unless_forced(tmp_path, capsys):
    other = {"name": "reference", "snapshot": None, "official": False}
    run_a, run_b = _runs(tmp_path, judge_b=other)
    with pytest.raises(UserError, match="judges differ .*--force"):
        compare_runs(run_a, run_b)
    forced = compare_runs(run_a, run_b, force=True)
    assert forced.label == FORCED_LABEL and forced.rows[0].mismatch

    code, _, err = run_cli(["compare", str(run_a), str(run_b)], capsys)
    assert code == 2 and "refusing to compare mmbench" in err
    code, out, _ = run_cli(["compare", str(run_a), str(run_b), "--force"], capsys)
    assert code == 0 and out.startswith(FORCED_LABEL) and "mmbench !" in out
    code, out, _ = run_cli(["compare", str(run_a), str(run_b), "--force", "--json"], capsys)
    assert json.loads(out)["label"] == FORCED_LABEL


def test_refuses_different_protocols(tmp_path):
    run_a = write_run(tmp_path / "a", [_cell("c1", 50.0)])
    own = {"name": "harness-own", "official": False}
    run_b = write_run(tmp_path / "b", [_cell("c1", 52.0, protocol=own)])
    with pytest.raises(UserError, match="protocols differ"):
        compare_runs(run_a, run_b)


def test_cells_pairs_and_unknown_cells(tmp_path, capsys):
    run = write_run(tmp_path / "r", [_cell("lora", 50.0), _cell("full", 53.5)])
    comparison = compare_runs(run, run, cells=["lora=full"])
    assert comparison.rows[0].delta == pytest.approx(3.5)
    assert comparison.rows[0].interval is None  # no samples kept: no interval, said so
    code, _, err = run_cli(["compare", str(run), str(run), "--cells", "qlora"], capsys)
    assert code == 2 and "no cell 'qlora'" in err
    code, out, _ = run_cli(["compare", str(run), str(run), "--cells", "lora=full"], capsys)
    assert code == 0 and "lora vs full" in out and "no samples" in out


def test_pairwise_samples_use_the_ratio_statistic(tmp_path):
    """Samples as the run writes them: per-run (reference, model) pairs under "parsed"."""

    def lines(model_scores):
        return [
            {"id": str(i), "parsed": [[8, m], None], "score": [m, None]}
            for i, m in enumerate(model_scores)
        ]

    llava = {"name": "openai", "snapshot": "gpt-4-0314", "official": True}
    cell = CellResult(
        id="c",
        axes={},
        spec_sha256="0",
        benchmarks={"llava-bench": benchmark("llava-bench", 75.0, judge=llava)},
    )
    run_a = write_run(tmp_path / "a", [cell], {("c", "llava-bench"): lines([6] * 10)})
    run_b = write_run(tmp_path / "b", [cell], {("c", "llava-bench"): lines([7] * 5 + [6] * 5)})
    interval = compare_runs(run_a, run_b).rows[0].interval
    assert interval.statistic == "ratio"
    assert interval.estimate == pytest.approx(100 * (65 / 80 - 60 / 80))  # +6.25 points


def test_scores_averaged_over_seeds_pair_per_question():
    """Two seeds of each side: a question's score is its mean over the seeds, a question
    failed in one seed is left out, and references (LLaVA-Bench) are averaged too."""
    seed0 = {"q0": ItemScore(1.0), "q1": ItemScore(0.0), "q2": ItemScore(1.0)}
    seed1 = {"q0": ItemScore(0.0), "q1": ItemScore(0.0), "q2": ItemScore(None)}
    pooled = mean_over_runs([seed0, seed1])
    assert pooled == {"q0": ItemScore(0.5), "q1": ItemScore(0.0), "q2": ItemScore(None)}
    control = mean_over_runs([{q: ItemScore(0.0) for q in seed0}] * 2)
    interval, excluded = item_interval(control, pooled, seed=0, resamples=2000)
    assert excluded == 1 and interval.n == 2 and interval.estimate == pytest.approx(25.0)
    rated = mean_over_runs([{"q0": ItemScore(6.0, 8.0)}, {"q0": ItemScore(4.0, 10.0)}])
    assert rated == {"q0": ItemScore(5.0, 9.0)}
