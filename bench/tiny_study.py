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

With `--seeds N` every cell trains with training seeds 0..N-1 (one world, one set of
foundations): scores are the seeds' mean, and each interval resamples questions whose scores
are averaged over the seeds, so it speaks about the seed-averaged model.

A second table compares the sizes, method by method: the larger size minus the smaller on the
mean of the three image benchmarks, with a paired bootstrap interval (each benchmark's questions
resampled, the three differences averaged per resample). `--registry FILE` merges a registry
file over the project's (an ablation: another tower for a size, say).

    .venv/bin/python bench/tiny_study.py [--quick] [--seeds N] [--registry FILE]
                                         [--store DIR] [--no-control] [--report-only]
                                         [--out DIR] [--matrix AXIS=V,... ...]
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument(
        "--seeds", type=int, default=1, help="training seeds per cell (0..N-1), averaged"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out/tiny_study"))
    parser.add_argument("--registry", type=Path, help="a registry file merged over the project's")
    parser.add_argument("--store", type=Path, help="a step store to share with another study")
    parser.add_argument(
        "--no-control", action="store_true", help="no shuffled-image cells (the size table only)"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="print the tables of a finished --out"
    )
    parser.add_argument(
        "--matrix",
        nargs="*",
        default=[],
        metavar="AXIS=V,...",
        help="more matrix axes (an ablation: rank=16,64 lr=1e-3); each value gets its own rows",
    )
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")

    from harness.plan.build import Options
    from harness.run.orchestrate import run_command

    matrix = [] if args.no_control else ["control=none,shuffled-images"]
    if args.seeds > 1:
        matrix.append("seed=" + ",".join(str(s) for s in range(args.seeds)))
    if args.quick:
        matrix += ["sizes=tiny-1m", "methods=lora"]
    matrix += args.matrix
    started = time.perf_counter()
    code = 0
    if not args.report_only:
        opts = Options(matrix=matrix, out=args.out, registry=args.registry, store=args.store)
        code = run_command(opts)
    wall = time.perf_counter() - started
    best_ratio = print_tables(args.out, args.seeds, args.registry)
    print(f"\nwall time {wall:.0f} s (exit code {code})")
    print(f"STUDY tiny_study {best_ratio:.2f}")
    return code


def print_tables(out: Path, seeds: int, registry: Path | None) -> float:
    """The scores table and the size table of a finished study; the best MMBench ratio."""
    from harness.report.exports import load_results

    planned = set(json.loads((out / "plan.json").read_text())["cells"])
    cells = [c for c in load_results(out).cells if c.id in planned]  # not earlier runs'
    groups = group_cells(cells, seeds)
    mean_of = "" if seeds == 1 else f" (mean of {seeds} training seeds)"
    width = max([16, *(len(n) for n, _ in groups)])
    header = f"{'benchmark':12} {'cell':{width}} {'score':>7} {'shuffled':>9} {'chance':>7}"
    print(f"\n{header}  margin [95% interval]{mean_of}")
    best_ratio = 0.0
    benches = sorted({b for cells in groups.values() for c in cells for b in c.benchmarks})
    for bench in benches:
        for name in sorted({n for n, _ in groups}):
            real, shuffled = (
                groups.get((name, "none"), []),
                groups.get((name, "shuffled-images"), []),
            )
            score, control = mean_score(real, bench), mean_score(shuffled, bench)
            if score is None and control is None:
                continue
            margin = None
            if bench in IMAGE_BENCHMARKS:
                margin = control_interval(out, real, shuffled, bench)
            elif bench == "mmlu":
                margin = chance_interval(out, real, bench, CHANCE[bench])
            text = "-" if margin is None else "{:+.1f} [{:+.1f}, {:+.1f}]".format(*margin)
            chance = CHANCE.get(bench)
            scores = f"{_fmt(score):>7} {_fmt(control):>9} {_fmt(chance):>7}"
            line = f"{bench:12} {name:{width}} {scores}"
            print(f"{line}  {text}".rstrip())
            if bench == "mmbench" and score is not None and control:
                best_ratio = max(best_ratio, score / control)
    print_size_comparison(out, groups, registry)
    return best_ratio


def print_size_comparison(run: Path, groups: dict, registry: Path | None) -> None:
    """Each method: the larger size minus the next smaller on the image benchmarks' mean."""
    from harness.config.registry import load_registry

    sizes = load_registry(registry).sizes
    names = sorted({n for n, _ in groups}, key=lambda n: n.split(" ", 1)[1])
    by_method: dict[str, list[str]] = {}
    for name in names:
        size, method = name.split(" ", 1)  # the method with any ablation's axes
        by_method.setdefault(method, []).append(size)
    print(f"\nsizes: larger minus smaller on the mean of {', '.join(IMAGE_BENCHMARKS)}")
    for method, found in by_method.items():
        found.sort(key=lambda s: sizes[s].params_b if s in sizes else 0.0)
        for small, large in zip(found, found[1:], strict=False):
            a, b = (
                groups.get((f"{small} {method}", "none")),
                groups.get((f"{large} {method}", "none")),
            )
            interval = size_interval(run, a or [], b or [])
            text = "-" if interval is None else "{:+.1f} [{:+.1f}, {:+.1f}]".format(*interval)
            print(f"{method:8} {large} - {small}  {text}")


def size_interval(
    run: Path, small: list[Any], large: list[Any]
) -> tuple[float, float, float] | None:
    """Large minus small on the mean of the image benchmarks, paired over each one's questions."""
    from harness.report.bootstrap import mean_of, paired_stats

    parts, n = [], 0
    for index, bench in enumerate(IMAGE_BENCHMARKS):
        items_a, items_b = pooled_items(run, small, bench), pooled_items(run, large, bench)
        if not items_a or not items_b:
            return None
        both = [i for i in items_a if i in items_b]
        pairs = [(items_a[i], items_b[i]) for i in both]
        pairs = [(x, y) for x, y in pairs if x.score is not None and y.score is not None]
        sa, sb = [x.score for x, _ in pairs], [y.score for _, y in pairs]
        if all(x.reference and y.reference for x, y in pairs):
            refs = [x.reference for x, _ in pairs], [y.reference for _, y in pairs]
            parts.append(paired_stats(sa, sb, *refs, seed=index))
        else:
            unit = all(0.0 <= v <= 1.0 for v in sa + sb)
            parts.append(paired_stats(sa, sb, seed=index, scale=100.0 if unit else 1.0))
        n += len(pairs)
    interval = mean_of(parts, n)
    return interval.estimate, interval.low, interval.high


# Axes that do not name a row: the seeds are averaged, the control is a column, and the size is
# what the size table compares.
GROUPING_AXES = ("size", "method", "seed", "control")


def group_cells(cells: list[Any], seeds: int) -> dict[tuple[str, str], list[Any]]:
    """("size method", control) -> that cell's runs over the training seeds asked for."""
    groups: dict[tuple[str, str], list[Any]] = {}
    values: dict[str, set[str]] = {}
    for cell in cells:
        for axis, value in cell.axes.items():
            values.setdefault(axis, set()).add(str(value))
    # an ablation's axes name rows; one that has a single value everywhere (mix) says nothing
    varying = {a for a, v in values.items() if len(v) > 1 and a not in GROUPING_AXES}
    for cell in cells:
        if int(cell.axes.get("seed", 0)) >= seeds:
            continue
        extra = [f"{k}={v}" for k, v in cell.axes.items() if k in varying]
        name = " ".join([cell.axes["size"], cell.axes["method"], *extra])
        groups.setdefault((name, cell.axes.get("control", "none")), []).append(cell)
    return groups


def mean_score(cells: list[Any], bench: str) -> float | None:
    values = [
        c.benchmarks[bench].metrics.get(c.benchmarks[bench].primary)
        for c in cells
        if bench in c.benchmarks
    ]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values and len(values) == len(cells) else None


def pooled_items(run: Path, cells: list[Any], bench: str) -> dict[str, Any] | None:
    """Each question's score averaged over the cell's seeds; None where one kept none."""
    from harness.report.samples import mean_over_runs, read_cell_scores

    tables = [read_cell_scores(run, c.id, bench) for c in cells]
    if not tables or any(t is None for t in tables):
        return None
    return mean_over_runs(tables)


def control_interval(
    run: Path, real: list[Any], shuffled: list[Any], bench: str
) -> tuple[float, float, float] | None:
    """The score minus the shuffled score over the same questions, with the 95% paired
    bootstrap interval `harness compare` computes (over seed-averaged questions)."""
    from harness.report.compare import item_interval

    items_real, items_shuffled = pooled_items(run, real, bench), pooled_items(run, shuffled, bench)
    if not items_real or not items_shuffled:
        return None
    interval, _ = item_interval(items_shuffled, items_real, seed=0, resamples=10_000)
    return None if interval is None else (interval.estimate, interval.low, interval.high)


def chance_interval(
    run: Path, real: list[Any], bench: str, chance: float
) -> tuple[float, float, float] | None:
    """The score minus chance, with the 95% bootstrap interval of the per-question mean."""
    from harness.report.bootstrap import paired_mean

    items = pooled_items(run, real, bench)
    scores = [i.score for i in (items or {}).values() if i.score is not None]
    if not scores:
        return None
    interval = paired_mean([chance / 100] * len(scores), scores, seed=0, scale=100.0)
    return interval.estimate, interval.low, interval.high


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main())
