"""Judge dollars per cell before anything runs: requests x runs x average tokens x price.

A benchmark states its judge load with an optional `judge_cost_hint` attribute:
(requests per evaluation, average prompt tokens, average completion tokens). None means the
judge's snapshot has no price in the registry (shown as unknown, never as $0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def judge_estimates(plan: Any) -> dict[str, float | None]:
    from harness.judge_cost import estimate_judge_usd
    from harness.plugins import get_plugins
    from harness.registry import load_registry

    plugins = get_plugins()
    prices = load_registry(Path(plan.registry_file) if plan.registry_file else None).judges
    out: dict[str, float | None] = {}
    for cid, cell in plan.cells.items():
        total: float | None = 0.0
        snapshot = cell.judge.snapshot or _default_snapshot(plugins, cell)
        for ev in cell.evals:
            bench = plugins.get("benchmark", ev.benchmark)
            hint = getattr(bench, "judge_cost_hint", None)
            if not bench.judged or hint is None:
                continue
            usd = estimate_judge_usd(hint[0] * ev.runs, hint[1], hint[2], snapshot or "", prices)
            total = None if usd is None or total is None else total + usd
        out[cid] = total
    return out


def _default_snapshot(plugins: Any, cell: Any) -> str | None:
    try:
        return plugins.get("judge", cell.judge.name)(cell.judge).snapshot()
    except Exception:
        return None
