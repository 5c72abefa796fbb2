"""Judge dollars per cell before anything runs: requests x runs x average tokens x price.

A benchmark states its judge load with an optional `judge_cost_hint` attribute:
(requests per evaluation, average prompt tokens, average completion tokens).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def judge_estimates(plan: Any) -> dict[str, float | None]:
    from harness.plugins import get_plugins
    from harness.registry import load_registry

    plugins = get_plugins()
    prices = load_registry(Path(plan.registry_file) if plan.registry_file else None).judges
    out: dict[str, float | None] = {}
    for cid, cell in plan.cells.items():
        total: float | None = 0.0
        for ev in cell.evals:
            bench = plugins.get("benchmark", ev.benchmark)
            hint = getattr(bench, "judge_cost_hint", None)
            if not bench.judged or hint is None:
                continue
            snapshot = cell.judge.snapshot or _default_snapshot(plugins, cell)
            usd = request_usd(snapshot, hint[1], hint[2], prices)
            if usd is None:
                total = None if cell.judge.name != "reference" else total
                continue
            if total is not None:
                total += usd * hint[0] * ev.runs
        out[cid] = total
    return out


def _default_snapshot(plugins: Any, cell: Any) -> str | None:
    try:
        return plugins.get("judge", cell.judge.name)(cell.judge).snapshot()
    except Exception:
        return None


def request_usd(
    snapshot: str | None,
    prompt_tokens: float,
    completion_tokens: float,
    prices: dict[str, dict[str, float]],
) -> float | None:
    price = prices.get(snapshot or "")
    if price is None:
        return None
    return (
        prompt_tokens * price.get("input_usd_per_mtok", 0.0)
        + completion_tokens * price.get("output_usd_per_mtok", 0.0)
    ) / 1e6
