"""Compare two runs cell by cell: per-benchmark differences with paired bootstrap intervals.

Scores are only comparable when judge and protocol are the same (PROTOCOLS.md section 4), so a
comparison across different judges or protocols is refused unless forced, and then labelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.report.bootstrap import Interval, paired_mean, paired_ratio
from harness.report.entries import judge_text, protocol_text
from harness.report.exports import load_results
from harness.report.samples import ItemScore, read_cell_scores
from harness.results import BenchmarkResult, CellResult

JUDGE_KEYS = ("name", "snapshot", "prompt_sha256", "temperature")
FORCED_LABEL = "FORCED: judges or protocols differ; these differences are not comparable"


@dataclass
class ComparedBenchmark:
    benchmark: str
    cell_a: str
    cell_b: str
    metric: str
    value_a: float | None
    value_b: float | None
    interval: Interval | None  # None when either run kept no samples
    excluded: int = 0  # items missing or failed on either side
    mismatch: list[str] = field(default_factory=list)  # why the two are not comparable

    @property
    def delta(self) -> float | None:
        if self.value_a is None or self.value_b is None:
            return None
        return self.value_b - self.value_a


@dataclass
class Comparison:
    run_a: str
    run_b: str
    rows: list[ComparedBenchmark]
    forced: bool = False

    @property
    def label(self) -> str | None:
        return FORCED_LABEL if self.forced and any(r.mismatch for r in self.rows) else None


def mismatches(a: BenchmarkResult, b: BenchmarkResult) -> list[str]:
    """What differs between two results' judges and protocols (empty when comparable)."""
    problems = []
    judge_a, judge_b = a.judge or {}, b.judge or {}
    if any(judge_a.get(k) != judge_b.get(k) for k in JUDGE_KEYS):
        problems.append(f"judges differ (A {judge_text(a.judge)}, B {judge_text(b.judge)})")
    key_a = (a.protocol.get("name"), bool(a.protocol.get("official")), a.version)
    key_b = (b.protocol.get("name"), bool(b.protocol.get("official")), b.version)
    if key_a != key_b:
        problems.append(
            f"protocols differ (A {protocol_text(a.protocol, a.version)}, "
            f"B {protocol_text(b.protocol, b.version)})"
        )
    return problems


def match_cells(
    cells_a: list[CellResult], cells_b: list[CellResult], wanted: list[str] | None
) -> list[tuple[CellResult, CellResult]]:
    """Pairs of cells: the same id in both runs, or 'ID_A=ID_B' pairs given with --cells."""
    by_a, by_b = {c.id: c for c in cells_a}, {c.id: c for c in cells_b}
    specs = wanted or [cid for cid in by_a if cid in by_b]
    if not specs:
        raise UserError("the two runs have no cell id in common; pass --cells ID_A=ID_B")
    pairs = []
    for spec in specs:
        id_a, _, id_b = spec.partition("=")
        id_b = id_b or id_a
        for run, cid, cells in (("A", id_a, by_a), ("B", id_b, by_b)):
            if cid not in cells:
                raise UserError(f"run {run} has no cell {cid!r} (has: {', '.join(sorted(cells))})")
        pairs.append((by_a[id_a], by_b[id_b]))
    return pairs


def compare_benchmark(
    run_a: Path,
    run_b: Path,
    a: CellResult,
    b: CellResult,
    name: str,
    *,
    seed: int,
    resamples: int,
) -> ComparedBenchmark:
    res_a, res_b = a.benchmarks[name], b.benchmarks[name]
    metric = res_a.primary
    row = ComparedBenchmark(
        name,
        a.id,
        b.id,
        metric,
        res_a.metrics.get(metric),
        res_b.metrics.get(metric),
        None,
        mismatch=mismatches(res_a, res_b),
    )
    items_a = read_cell_scores(run_a, a.id, name)
    items_b = read_cell_scores(run_b, b.id, name)
    if items_a is None or items_b is None:
        return row
    row.interval, row.excluded = item_interval(items_a, items_b, seed=seed, resamples=resamples)
    return row


def item_interval(
    items_a: dict[str, ItemScore],
    items_b: dict[str, ItemScore],
    *,
    seed: int,
    resamples: int,
) -> tuple[Interval | None, int]:
    """The paired bootstrap interval of B minus A over the items both scored, and how many
    items either side left out. LLaVA-Bench-style items (with reference scores) use the
    ratio-of-means statistic; 0-1 scores are reported in percent points."""
    paired = [
        (items_a[i], items_b[i])
        for i in items_a
        if i in items_b and items_a[i].score is not None and items_b[i].score is not None
    ]
    excluded = len(set(items_a) | set(items_b)) - len(paired)
    if not paired:
        return None, excluded
    sa, sb = [p[0].score for p in paired], [p[1].score for p in paired]
    if all(p[0].reference and p[1].reference for p in paired):
        ra, rb = [p[0].reference for p in paired], [p[1].reference for p in paired]
        return paired_ratio(sa, ra, sb, rb, seed=seed, resamples=resamples), excluded
    unit = all(0.0 <= s <= 1.0 for s in sa + sb)  # accuracies and 0-1 grades: percent points
    interval = paired_mean(sa, sb, seed=seed, resamples=resamples, scale=100.0 if unit else 1.0)
    return interval, excluded


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    *,
    cells: list[str] | None = None,
    force: bool = False,
    seed: int = 0,
    resamples: int = 10_000,
) -> Comparison:
    """Compare every benchmark the matched cells share; refuse mismatched judges/protocols."""
    run_a, run_b = Path(run_a), Path(run_b)
    results_a, results_b = load_results(run_a), load_results(run_b)
    rows = []
    for a, b in match_cells(results_a.cells, results_b.cells, cells):
        for name in a.benchmarks:
            if name in b.benchmarks:
                rows.append(
                    compare_benchmark(run_a, run_b, a, b, name, seed=seed, resamples=resamples)
                )
    if not rows:
        raise UserError("the matched cells share no benchmark result")
    bad = [r for r in rows if r.mismatch]
    if bad and not force:
        first = bad[0]
        raise UserError(
            f"refusing to compare {first.benchmark} ({first.cell_a} vs {first.cell_b}): "
            f"{'; '.join(first.mismatch)}"
            + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
            + "; pass --force to compare anyway (the output is labelled)"
        )
    return Comparison(str(run_a), str(run_b), rows, forced=force)


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    return {
        "run_a": comparison.run_a,
        "run_b": comparison.run_b,
        "label": comparison.label,
        "rows": [
            {
                "benchmark": r.benchmark,
                "cell_a": r.cell_a,
                "cell_b": r.cell_b,
                "metric": r.metric,
                "a": r.value_a,
                "b": r.value_b,
                "delta": r.delta,
                "excluded_items": r.excluded,
                "not_comparable": r.mismatch,
                "bootstrap": None
                if r.interval is None
                else {
                    "statistic": r.interval.statistic,
                    "estimate": r.interval.estimate,
                    "low": r.interval.low,
                    "high": r.interval.high,
                    "n": r.interval.n,
                    "significant": r.interval.significant,
                },
            }
            for r in comparison.rows
        ],
    }
