"""Judge dollars from token usage and registry.toml's per-snapshot prices.

`prices` is the registry's [judges] table: snapshot -> {input_usd_per_mtok, output_usd_per_mtok}.
A snapshot with no price gives None (shown as "unknown"), never 0, so that an unpriced judge
never looks free. Offline judges (the reference judge, local `hf:` models) cost no dollars: their
compute is in the GPU-hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OFFLINE_PREFIXES = ("reference-", "hf:")


def is_offline(snapshot: str) -> bool:
    return snapshot.startswith(OFFLINE_PREFIXES)


def price_of(snapshot: str, prices: Mapping[str, Any]) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for `snapshot`, or None when not priced."""
    entry = prices.get(snapshot)
    if entry is None:
        return None
    if isinstance(entry, Mapping):
        inp, out = entry.get("input_usd_per_mtok"), entry.get("output_usd_per_mtok")
    else:
        inp = getattr(entry, "input_usd_per_mtok", None)
        out = getattr(entry, "output_usd_per_mtok", None)
    if inp is None or out is None:
        return None
    return float(inp), float(out)


def judge_usd(
    snapshot: str, prompt_tokens: int, completion_tokens: int, prices: Mapping[str, Any]
) -> float | None:
    """Dollars for this usage; None when the snapshot has no price in the registry."""
    if is_offline(snapshot):
        return 0.0
    price = price_of(snapshot, prices)
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000


def estimate_judge_usd(
    n_requests: int,
    avg_prompt_tokens: float,
    avg_completion_tokens: float,
    snapshot: str,
    prices: Mapping[str, Any],
) -> float | None:
    """What `n_requests` judgments of this size cost (for `harness plan`); None if unpriced."""
    return judge_usd(
        snapshot,
        round(n_requests * avg_prompt_tokens),
        round(n_requests * avg_completion_tokens),
        prices,
    )


def format_usd(usd: float | None) -> str:
    """$1.23, or "unknown" for an unpriced snapshot."""
    return "unknown" if usd is None else f"${usd:,.2f}"


def paid_usd(manifest: Mapping[str, Any]) -> float | None:
    """What a finished judge step paid (cache hits not included); None when unpriced.

    Manifests written before the paid/saved split hold the paid dollars in judge_usd_paid_now.
    """
    if "judge_usd_paid_now" in manifest:
        return manifest["judge_usd_paid_now"]
    return manifest.get("judge_usd")


def add_judge_cost(cost: Any, manifest: Mapping[str, Any]) -> None:
    """Add a judge step's manifest to a cell's CostRecord: tokens (cache hits included, they
    are what the judging took), dollars paid, dollars saved by the cache, unknown prices."""
    usage = manifest.get("usage", {})
    cost.judge_prompt_tokens += int(usage.get("prompt_tokens", 0)) + int(
        usage.get("cached_prompt_tokens", 0)
    )
    cost.judge_completion_tokens += int(usage.get("completion_tokens", 0)) + int(
        usage.get("cached_completion_tokens", 0)
    )
    paid = paid_usd(manifest)
    if paid is None:  # offline judges pay 0.0; None is a snapshot with no price
        cost.judge_price_unknown = True
    cost.judge_usd += paid or 0.0
    cost.judge_usd_saved += manifest.get("judge_usd_saved") or 0.0
