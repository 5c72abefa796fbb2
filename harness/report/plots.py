"""Plots (matplotlib Agg, PNG + SVG): the cost/performance trade-off with its Pareto frontier,
score against model size per method, and each cell's cost broken down by phase.

SVG text is kept as text (svg.fonttype none) so labels can be read back and searched.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from harness.report.entries import Entry, cell_label, from_cell, size_value, sort_key  # noqa: E402
from harness.report.layouts import label_axes  # noqa: E402
from harness.report.paper import paper_entries  # noqa: E402
from harness.results import RunResults  # noqa: E402

RC = {"svg.fonttype": "none", "svg.hashsalt": "harness-report", "font.size": 9}
PHASES = ("stage1", "stage2", "eval", "judge")


def headline(runs: list[Entry]) -> tuple[str, str, str] | None:
    """(benchmark, metric, axis label) to plot: LLaVA-Bench overall, else the first benchmark."""
    if any("llava-bench" in e.scores for e in runs):
        return "llava-bench", "overall", "LLaVA-Bench overall"
    for e in sorted(runs, key=sort_key):
        for bench, metric in e.primary.items():
            return bench, metric, f"{bench} {metric}"
    return None


def pareto_frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both cost (lower) and score (higher), by rising cost."""
    frontier: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not frontier or y > frontier[-1][1]:
            frontier.append((x, y))
    return frontier


def plot_pareto(runs: list[Entry], paper: list[Entry]) -> Figure | None:
    chosen = headline(runs)
    if chosen is None:
        return None
    bench, metric, ylabel = chosen
    shown = label_axes(runs)
    points = [(e.gpu_hours, e.score(bench, metric), cell_label(e, shown)) for e in runs]
    points = [(x, y, t) for x, y, t in points if x and y is not None]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter([p[0] for p in points], [p[1] for p in points], label="this run", zorder=3)
    for x, y, text in points:
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    frontier = pareto_frontier([(x, y) for x, y, _ in points])
    ax.plot([p[0] for p in frontier], [p[1] for p in frontier], "--", label="Pareto frontier")
    paper_points = [(e.gpu_hours, e.score(bench, metric)) for e in paper if e.gpu_hours]
    if paper_points and bench == "llava-bench":
        ax.scatter(*zip(*paper_points, strict=True), marker="x", label="paper (Lu et al. 2023)")
    ax.set_xlabel("GPU-hours per node (stage 2)")
    ax.set_ylabel(ylabel)
    ax.set_title("Score vs training cost")
    ax.legend(loc="lower right", fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def plot_size(runs: list[Entry]) -> Figure | None:
    """One line per method (and per other varying setting), rising with the model's size."""
    chosen = headline(runs)
    if chosen is None or not any("size" in e.axes for e in runs):
        return None
    bench, metric, ylabel = chosen
    series_axes = [a for a in label_axes(runs) if a not in ("size", "rank")]
    series: dict[str, list[tuple[float, float]]] = {}
    ticks: dict[float, str] = {}
    for e in sorted(runs, key=sort_key):
        y = e.score(bench, metric)
        if y is None or "size" not in e.axes:
            continue
        x = float(e.total_params or size_value(e.axes["size"]))
        ticks[x] = str(e.axes["size"])
        name = cell_label(e, series_axes) if series_axes else str(e.axes.get("method", "-"))
        series.setdefault(name, []).append((x, y))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name)
    ax.set_xscale("log")
    ax.set_xticks(list(ticks), list(ticks.values()))
    ax.minorticks_off()
    ax.set_xlabel("Model size (parameters)")
    ax.set_ylabel(ylabel)
    ax.set_title("Score vs model size, per method")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def plot_costs(runs: list[Entry]) -> Figure | None:
    runs = [e for e in sorted(runs, key=sort_key) if any(e.cost_parts.values())]
    if not runs:
        return None
    shown = label_axes(runs)
    labels = [cell_label(e, shown) for e in runs]
    fig, ax = plt.subplots(figsize=(max(6.4, 0.6 * len(runs) + 2), 4.2))
    bottoms = [0.0] * len(runs)
    for phase in PHASES:
        heights = [e.cost_parts.get(phase, 0.0) for e in runs]
        ax.bar(labels, heights, bottom=bottoms, label=phase)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.set_xlabel("Cell")
    ax.set_ylabel("Cost (USD)")
    ax.set_title("Cost per cell by phase")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_plots(
    results: RunResults, out_dir: Path, *, with_paper: bool = False
) -> dict[str, dict[str, Path]]:
    """Write each plot the results support as PNG and SVG; name -> {"png": path, "svg": path}."""
    runs = [from_cell(c) for c in results.cells]
    paper = paper_entries("table4") if with_paper else []
    written: dict[str, dict[str, Path]] = {}
    with plt.rc_context(RC):
        figures = {
            "score_vs_gpu_hours": plot_pareto(runs, paper),
            "score_vs_size": plot_size(runs),
            "cost_breakdown": plot_costs(runs),
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, fig in figures.items():
            if fig is None:
                continue
            paths = {"png": out_dir / f"{name}.png", "svg": out_dir / f"{name}.svg"}
            fig.savefig(paths["png"], dpi=110, bbox_inches="tight")
            fig.savefig(paths["svg"], bbox_inches="tight", metadata={"Date": None})
            plt.close(fig)
            written[name] = paths
    return written
