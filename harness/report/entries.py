"""One row's worth of numbers, whether it comes from a run's cell or from the study's tables.

Table layouts read `Entry` objects only, so the study's published rows (paper_rows.json) and a
run's cells go through the same code and line up column for column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from harness.results import BenchmarkResult, CellResult

METHOD_ORDER = {"base": 0, "full": 1, "lora": 2, "qlora": 3}
AXIS_ORDER = ("size", "method", "rank", "res", "mix", "beam")


@dataclass
class Entry:
    """Scores, cost and provenance flags for one row of a report table."""

    label: str
    axes: dict[str, Any]
    scores: dict[str, dict[str, float]]  # benchmark -> metric -> value
    std: dict[str, dict[str, float]] = field(default_factory=dict)
    source: str = "run"  # "run" or "paper"
    cell_id: str | None = None
    gpu_hours: float | None = None  # stage 2, GPU-hours per node (the study's unit)
    usd: float | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    stage2_steps: int | None = None  # optimizer steps stage 2 ran (None: not measured)
    cost_estimated: bool = False
    n_failed: dict[str, int] = field(default_factory=dict)
    failures: dict[str, dict[str, int]] = field(default_factory=dict)
    judges: dict[str, dict[str, Any]] = field(default_factory=dict)
    protocols: dict[str, dict[str, Any]] = field(default_factory=dict)
    cost_parts: dict[str, float] = field(default_factory=dict)  # phase -> USD
    primary: dict[str, str] = field(default_factory=dict)  # benchmark -> headline metric
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # benchmark -> its extras
    judge_price_unknown: bool = False  # a judge with no price: `usd` leaves the judge out
    judge_usd_saved: float = 0.0  # judge answers served from the cache (not spend)

    def score(self, benchmark: str, metric: str) -> float | None:
        return self.scores.get(benchmark, {}).get(metric)

    def flags(self, benchmark: str) -> str:
        """'*' for a harness-own protocol, '†' for a judge that is not a GPT-4 model, '‡' for
        a score over incomplete judging (items the judge failed on, not the model)."""
        if self.source == "paper" or benchmark not in self.scores:
            return ""
        marks = ""
        if not self.protocols.get(benchmark, {}).get("official", False):
            marks += "*"
        judge = self.judges.get(benchmark)
        if judge is not None and not is_gpt4_judge(judge):
            marks += "†"
        if self.failures.get(benchmark, {}).get("judge:judge_error", 0) > 0:
            marks += "‡"
        return marks


def is_gpt4_judge(judge: dict[str, Any]) -> bool:
    model = str(judge.get("snapshot") or judge.get("name") or "")
    return model.lower().startswith("gpt-4")


def judge_text(judge: dict[str, Any] | None) -> str:
    if not judge:
        return "none"
    name, snapshot = judge.get("name", "?"), judge.get("snapshot")
    return f"{name}:{snapshot}" if snapshot and snapshot != name else str(name)


def protocol_text(protocol: dict[str, Any], version: str | None = None) -> str:
    name = protocol.get("name") or ("official" if protocol.get("official") else "harness-own")
    return f"{name} v{version}" if version else str(name)


def from_cell(cell: CellResult) -> Entry:
    stage2 = cell.train.get("stage2")
    cost = cell.cost
    benchmarks: dict[str, BenchmarkResult] = cell.benchmarks
    gpu_hours = stage2.gpu_hours_per_node if stage2 else None
    if not gpu_hours and cost.stage2_gpu_hours:
        gpu_hours = cost.stage2_gpu_hours
    return Entry(
        label=cell.id,
        axes=dict(cell.axes),
        scores={name: dict(b.metrics) for name, b in benchmarks.items()},
        std={name: dict(b.std) for name, b in benchmarks.items()},
        cell_id=cell.id,
        gpu_hours=gpu_hours,
        usd=cost.total_usd or None,
        trainable_params=stage2.trainable_params if stage2 and stage2.trainable_params else None,
        total_params=stage2.total_params if stage2 and stage2.total_params else None,
        stage2_steps=stage2.steps if stage2 and stage2.steps else None,
        cost_estimated=cost.estimated,
        n_failed={name: b.n_failed for name, b in benchmarks.items()},
        failures={name: dict(b.failures) for name, b in benchmarks.items()},
        judges={name: dict(b.judge) for name, b in benchmarks.items() if b.judge is not None},
        protocols={name: {**b.protocol, "version": b.version} for name, b in benchmarks.items()},
        cost_parts=cost_parts(cell),
        primary={name: b.primary for name, b in benchmarks.items()},
        extra={name: dict(b.extra) for name, b in benchmarks.items() if b.extra},
        judge_price_unknown=cost.judge_price_unknown,
        judge_usd_saved=cost.judge_usd_saved,
    )


def cost_parts(cell: CellResult) -> dict[str, float]:
    """Dollars per phase: GPU dollars split pro rata over the phases' GPU-hours, plus the judge."""
    cost = cell.cost
    hours = {
        "stage1": cost.stage1_gpu_hours,
        "stage2": cost.stage2_gpu_hours,
        "eval": cost.eval_gpu_hours,
    }
    total_hours = sum(hours.values())
    parts = {k: (cost.gpu_usd * h / total_hours if total_hours else 0.0) for k, h in hours.items()}
    parts["judge"] = cost.judge_usd
    return parts


def size_value(size: Any) -> float:
    """'7b' -> 7e9, 'tiny-1m' -> 1e6: sorts sizes the way people read them."""
    match = re.search(r"(\d+(?:\.\d+)?)\s*([kmbt])\b", str(size).lower())
    if not match:
        return float("inf")
    scale = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[match.group(2)]
    return float(match.group(1)) * scale


def sort_key(entry: Entry) -> tuple:
    axes = entry.axes
    return (
        size_value(axes.get("size", "")),
        str(axes.get("size", "")),
        METHOD_ORDER.get(str(axes.get("method", "")), 9),
        str(axes.get("method", "")),
        _num(axes.get("rank")),
        _num(axes.get("res")),
        str(axes.get("mix", "")),
        _num(axes.get("beam")),
        entry.label,
    )


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return -1.0


def varying_axes(entries: list[Entry]) -> list[str]:
    """Axes that take more than one value across the entries, in a stable reading order."""
    names: list[str] = []
    for entry in entries:
        names.extend(k for k in entry.axes if k not in names)
    varying = [k for k in names if len({repr(e.axes.get(k)) for e in entries}) > 1]
    ordered = [k for k in AXIS_ORDER if k in varying]
    return ordered + sorted(k for k in varying if k not in AXIS_ORDER)


def axis_text(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name == "res":
        return f"{value}px"
    if name == "beam":
        return f"beam={value}"
    if name in ("size", "method", "mix"):
        return str(value)
    return f"{name}={value}"


RANKLESS_METHODS = ("full", "base", "checkpoint")  # the built-ins that train no adapters


def method_text(axes: dict[str, Any]) -> str:
    """'lora-64', 'qlora-64', 'dora-64', 'full': the study's Table 4 column heads, the rank named
    the same way for every method but those that train no rank (a plugin's included)."""
    method = str(axes.get("method", "-"))
    rank = axes.get("rank")
    return f"{method}-{rank}" if rank is not None and method not in RANKLESS_METHODS else method


def cell_label(entry: Entry, shown: list[str], skip: tuple[str, ...] = ()) -> str:
    """A row label from the axes that distinguish the rows, minus those with their own column."""
    if entry.source == "paper":
        return entry.label
    parts: list[str] = []
    for name in shown:
        if name in skip or name == "rank" and "method" in shown:
            continue
        if name == "method":
            parts.append(method_text(entry.axes))
        else:
            parts.append(axis_text(name, entry.axes.get(name)))
    if not parts:  # everything that varies has its own column: name the model plainly
        parts = [str(entry.axes["size"])] if "size" in entry.axes else []
        parts += [method_text(entry.axes)] if "method" in entry.axes else []
    return " ".join(parts) or entry.label
