"""The default run as a small scaling study: scores against chance and a shuffled-image control.

Trains the tiny sizes with each method on the synthetic world (building the cached tiny
foundation models first), evaluates every benchmark on the real images and on shuffled images
(each question gets another item's image), and prints one table:

    benchmark  cell  score  shuffled  chance  margin [95% interval]

A model that learned from the images scores above both columns. For the image benchmarks
(LLaVA-Bench, MM-Vet, MMBench) "margin" is the score minus the shuffled score over the same
questions, with the paired bootstrap interval that `harness compare` gives: an interval above
zero is a margin that resampling which questions were asked does not erase. MMLU asks no image,
so its margin is over chance (25), with the bootstrap interval of its mean. Final line:
`STUDY tiny_study <best score / shuffled score on MMBench>` (not a RATIO line: run_all skips it).

    .venv/bin/python bench/tiny_study.py [--quick] [--out bench/out/tiny_study]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

# Chance for each benchmark's headline metric (percent); None where no chance level exists
# (judged open answers: the shuffled-image control is the baseline there).
CHANCE = {
    "mmbench": 100 / 256,  # CircularEval, 4 options: all 4 passes right by luck
    "mmlu": 25.0,
    "llava-bench": None,
    "mm-vet": None,
    "vicuna-80": None,
}


# Benchmarks that ask about images: the shuffled control is their baseline, so their margin is
# over it (Vicuna-80 and MMLU are text-only: their two columns agree).
IMAGE_BENCHMARKS = ("llava-bench", "mm-vet", "mmbench")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one size, one method")
    parser.add_argument("--out", type=Path, default=Path("bench/out/tiny_study"))
    args = parser.parse_args()

    from harness.experiment import Options
    from harness.orchestrate import run_command

    matrix = ["control=none,shuffled-images"]
    if args.quick:
        matrix += ["sizes=tiny-1m", "methods=lora"]
    started = time.perf_counter()
    code = run_command(Options(matrix=matrix, out=args.out))
    wall = time.perf_counter() - started
    from harness.report.exports import load_results

    cells = {cell.id: cell for cell in load_results(args.out).cells}
    rows: dict[tuple[str, str], dict[str, float | None]] = {}
    for cell in cells.values():
        name = f"{cell.axes['size']} {cell.axes['method']}"
        for bench, result in cell.benchmarks.items():
            value = result.metrics.get(result.primary)
            rows.setdefault((bench, name), {})[cell.axes.get("control", "none")] = value
    header = f"{'benchmark':12} {'cell':16} {'score':>7} {'shuffled':>9} {'chance':>7}"
    print(f"\n{header}  margin [95% interval]")
    best_ratio = 0.0
    for (bench, name), values in sorted(rows.items()):
        score, shuffled = values.get("none"), values.get("shuffled-images")
        chance = CHANCE.get(bench)
        cell = name.replace(" ", "_")
        paired = None
        if bench in IMAGE_BENCHMARKS:
            paired = paired_interval(args.out, cells, bench, cell)
        elif bench == "mmlu":
            paired = chance_interval(args.out, cell, bench, CHANCE[bench])
        margin = "-" if paired is None else "{:+.1f} [{:+.1f}, {:+.1f}]".format(*paired)
        line = f"{bench:12} {name:16} {_fmt(score):>7} {_fmt(shuffled):>9} {_fmt(chance):>7}"
        print(f"{line}  {margin}".rstrip())
        if bench == "mmbench" and score is not None and shuffled:
            best_ratio = max(best_ratio, score / shuffled)
    print(f"\nwall time {wall:.0f} s (exit code {code})")
    print(f"STUDY tiny_study {best_ratio:.2f}")
    return code


def paired_interval(
    run: Path, cells: dict[str, Any], bench: str, cell: str
) -> tuple[float, float, float] | None:
    """The score minus the shuffled score over the same questions, with its 95% paired
    bootstrap interval (harness compare's), or None where the samples carry no item scores."""
    from harness.report.compare import compare_benchmark

    real, shuffled = cells.get(f"{cell}_control-none"), cells.get(f"{cell}_control-shuffled-images")
    if real is None or shuffled is None or bench not in real.benchmarks:
        return None
    row = compare_benchmark(run, run, shuffled, real, bench, seed=0, resamples=10_000)
    if row.interval is None:
        return None
    return row.interval.estimate, row.interval.low, row.interval.high


def chance_interval(
    run: Path, cell: str, bench: str, chance: float
) -> tuple[float, float, float] | None:
    """The score minus chance, with the 95% bootstrap interval of the per-question mean."""
    from harness.report.bootstrap import paired_mean
    from harness.report.samples import read_cell_scores

    items = read_cell_scores(run, f"{cell}_control-none", bench)
    scores = [i.score for i in (items or {}).values() if i.score is not None]
    if not scores:
        return None
    interval = paired_mean([chance / 100] * len(scores), scores, seed=0, scale=100.0)
    return interval.estimate, interval.low, interval.high


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main())
