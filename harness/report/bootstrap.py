"""Paired bootstrap over items: how sure is a difference between two models on the same items?

Resampling items (with replacement) keeps each item's pair together, so item difficulty cancels;
the interval is the percentile interval of the resampled statistic. Seeded: reruns agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK = 500  # resamples per batch: bounds memory on 14k-item benchmarks


@dataclass
class Interval:
    estimate: float
    low: float
    high: float
    n: int
    statistic: str  # "mean", "mean x100" or "ratio"

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def _resampled(n: int, resamples: int, seed: int):
    rng = np.random.default_rng(seed)
    done = 0
    while done < resamples:
        size = min(CHUNK, resamples - done)
        yield rng.integers(0, n, size=(size, n))
        done += size


def paired_stats(
    a: list[float],
    b: list[float],
    ref_a: list[float] | None = None,
    ref_b: list[float] | None = None,
    *,
    resamples: int = 10_000,
    seed: int = 0,
    scale: float = 1.0,
) -> tuple[float, np.ndarray]:
    """B minus A and its resampled values: the mean difference x scale, or, with references,
    100 (sum b / sum ref_b - sum a / sum ref_a), LLaVA-Bench's own statistic."""
    if ref_a is None or ref_b is None:
        diffs = (np.asarray(b, dtype=float) - np.asarray(a, dtype=float)) * scale
        stats = [diffs[idx].mean(axis=1) for idx in _resampled(len(diffs), resamples, seed)]
        return float(diffs.mean()), np.concatenate(stats)
    va, ra, vb, rb = (np.asarray(x, dtype=float) for x in (a, ref_a, b, ref_b))

    def ratio_diff(idx) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):  # a resample of zero references
            return 100 * (vb[idx].sum(-1) / rb[idx].sum(-1) - va[idx].sum(-1) / ra[idx].sum(-1))

    estimate = float(100 * (vb.sum() / rb.sum() - va.sum() / ra.sum()))
    return estimate, np.concatenate([ratio_diff(i) for i in _resampled(len(va), resamples, seed)])


def paired_mean(
    a: list[float],
    b: list[float],
    *,
    resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
    scale: float = 1.0,
) -> Interval:
    """Interval for mean(b - a) x scale."""
    estimate, stats = paired_stats(a, b, resamples=resamples, seed=seed, scale=scale)
    name = "mean" if scale == 1.0 else f"mean x{scale:g}"
    return _interval(estimate, stats, len(a), level, name)


def paired_ratio(
    a: list[float],
    ref_a: list[float],
    b: list[float],
    ref_b: list[float],
    *,
    resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Interval for 100 (sum b / sum ref_b - sum a / sum ref_a): LLaVA-Bench's own statistic."""
    estimate, stats = paired_stats(a, b, ref_a, ref_b, resamples=resamples, seed=seed)
    return _interval(estimate, stats, len(a), level, "ratio")


def mean_of(parts: list[tuple[float, np.ndarray]], n: int, level: float = 0.95) -> Interval:
    """The mean of several statistics, each resampled over its own items (one benchmark each,
    with its own seed): resample k of the mean is the mean of each statistic's resample k."""
    estimate = float(np.mean([e for e, _ in parts]))
    stats = np.mean(np.stack([s for _, s in parts]), axis=0)
    return _interval(estimate, stats, n, level, "mean of statistics")


def _interval(estimate: float, stats: np.ndarray, n: int, level: float, name: str) -> Interval:
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(stats, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high), n, name)
