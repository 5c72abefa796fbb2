"""How long the rest of a run will take: the planner's estimates, refined by measured steps.

A training step the planner can estimate (real sizes on known hardware) starts from that
estimate, scaled by how the finished steps of its kind compared with theirs. Every other step
takes the mean measured time of finished steps like it (same kind and plugin, else same kind),
counting steps reused from the store by their recorded wall time. A running step that reports
its progress is extrapolated from its own pace. Work left is spread over the executor's
parallel slots. Steps nothing is known about yet make the figure a lower bound.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from harness.cost.planner import efficiencies, estimate_cell
from harness.plan.dag import Step
from harness.plan.plan_file import Plan

TRAINING = ("stage1", "stage2")


@dataclass(frozen=True)
class Left:
    seconds: float
    lower_bound: bool  # some steps had no estimate yet
    known: bool  # at least one step had one


def _kinds(step: Step) -> tuple[tuple[str, str], str]:
    plugin = step.plugin[1] if step.plugin else ""
    return (step.kind, plugin), step.kind


def planned_seconds(plan: Plan) -> dict[str, float]:
    """Wall seconds the planner expects for each training step it can estimate."""
    out: dict[str, float] = {}
    try:
        eff = efficiencies()
        for step in plan.steps:
            if step.kind not in TRAINING:
                continue
            cell = plan.cells[step.cell]
            gpu_hours = estimate_cell(cell, eff).get(f"{step.kind}_gpu_hours")
            if gpu_hours:
                out[step.id] = gpu_hours * 3600 / max(1, cell.hardware.nodes)
    except Exception:  # no estimate is better than no run
        return {}
    return out


class Estimator:
    def __init__(self, plan: Plan, capacity: int, planned: dict[str, float] | None = None):
        self.steps = {s.id: s for s in plan.steps}
        self.capacity = max(1, capacity)
        self.planned = planned_seconds(plan) if planned is None else planned
        self.by_plugin: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.by_kind: dict[str, list[float]] = defaultdict(list)
        self.ratios: dict[str, list[float]] = defaultdict(list)  # measured / planned

    def measured(self, step_id: str, seconds: float) -> None:
        step = self.steps[step_id]
        plugin_key, kind = _kinds(step)
        self.by_plugin[plugin_key].append(seconds)
        self.by_kind[kind].append(seconds)
        planned = self.planned.get(step_id)
        if planned:
            self.ratios[kind].append(seconds / planned)

    def expected(self, step_id: str) -> float | None:
        """Seconds this step is expected to take from start to end, when anything says."""
        step = self.steps[step_id]
        planned = self.planned.get(step_id)
        if planned is not None:
            ratios = self.ratios.get(step.kind)
            return planned * statistics.median(ratios) if ratios else planned
        plugin_key, kind = _kinds(step)
        seen = self.by_plugin.get(plugin_key) or self.by_kind.get(kind)
        return statistics.fmean(seen) if seen else None

    def left(self, pending: list[str], running: dict[str, tuple[float, float | None]]) -> Left:
        """Seconds left for `pending` steps and `running` ones (id -> elapsed, and the seconds
        its own pace leaves it, when it reports progress): the work spread over the parallel
        slots, and never less than the longest running step still needs."""
        if not pending and not running:
            return Left(0.0, lower_bound=False, known=True)
        work, longest, unknown, known = 0.0, 0.0, False, False
        for sid in pending:
            expected = self.expected(sid)
            if expected is None:
                unknown = True
            else:
                work, known = work + expected, True
        for sid, (elapsed, own_left) in running.items():
            expected = self.expected(sid)
            if own_left is None and expected is not None:
                own_left = max(0.0, expected - elapsed)
            if own_left is None:
                unknown = True
            else:
                work, longest, known = work + own_left, max(longest, own_left), True
        return Left(max(longest, work / self.capacity), unknown, known)
