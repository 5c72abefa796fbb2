"""The judge step: judging that is finished only when it is complete enough to score.

A judge step asks the judge for every request (the cache first), in batches. It fails (raises,
so the store never records it as finished) when:
- the judge refuses the key (401/403): at once, with one line naming the status and the key;
- more than `judge.max_failed_share` of its requests failed in the judge (server down,
  timeouts, 5xx after retries); parse failures under the protocol's rule do not count here,
  they are the judge's answers, excluded from the score and counted as the benchmark says;
- under --budget-usd, its estimate does not fit beside what is spent and reserved, or spend
  reaches the budget between batches.
Every answer it did get is in the judge cache, so the rerun asks only for the missing ones.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.judging.client import JUDGE_ERROR, NOT_ASKED, JudgeOutcome, JudgeUsage, judge_all
from harness.plan.dag import Step
from harness.plan.plan_file import Plan
from harness.plan.step_inputs import (
    eval_spec,
    judge_prices,
    load_items,
    make_judge,
    read_generation,
)
from harness.plugins import Plugins

BATCHES_PER_CONCURRENCY = 2  # a batch keeps every judge connection busy twice over


def allowed_failures(n_requests: int, max_failed_share: float) -> int:
    """How many judge errors a step of `n_requests` may have and still finish."""
    return math.floor(n_requests * max_failed_share + 1e-9)


def run_judge_step(
    plan: Plan, step: Step, plugins: Plugins, work: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    from harness.judging.cache import JudgeCache

    cell = plan.cells[step.cell]
    bench = plugins.benchmark(step.spec["benchmark"])
    ev = eval_spec(cell, bench.name)
    ctx, items = load_items(plan, cell, bench, ev, work)
    gen = next(d for d in plan.deps(step) if d.kind == "generate")
    outputs, _ = read_generation(plan.store.step_dir(gen.key))
    judge = make_judge(plugins, cell, bench.name)
    requests = bench.judge_requests(items, outputs, step.spec["run"], ctx)
    log(f"{bench.name} run {step.spec['run']}: {len(requests)} judge requests")
    spec = cell.judge.for_benchmark(bench.name)
    allowed = allowed_failures(len(requests), spec.max_failed_share)
    cache = JudgeCache(plan.store.judge_cache_path)
    prices = judge_prices(plan)
    spend = _BudgetGuard.start(plan, step, judge.snapshot(), requests, cache, prices)
    try:
        outcome = judge_all(
            bench,
            judge,
            requests,
            cache,
            batch_size=max(1, spec.max_concurrency) * BATCHES_PER_CONCURRENCY,
            before_batch=spend.before_batch if spend else None,
            max_judge_errors=allowed,
        )
    finally:
        if spend is not None:
            spend.finish()
    _refuse_incomplete(step, outcome, len(requests), allowed, spec.max_failed_share)
    body = {
        "judge": outcome.judge,
        "parsed": outcome.judgments,
        "records": {rid: rec.to_json() for rid, rec in outcome.records.items()},
        "failures": outcome.failures,
        "reasks": outcome.reasks,
        "usage": outcome.usage.to_json(),
        "n_requests": len(requests),
    }
    text = json.dumps(body, indent=1, sort_keys=True, default=str)
    (work / "judgments.json").write_text(text + "\n")
    paid = outcome.usd(prices)
    full = outcome.usd(prices, include_cached=True)
    return {
        "judge": outcome.judge,
        "usage": body["usage"],
        "judge_usd": paid,  # paid now; answers from the cache are not spend
        "judge_usd_paid_now": paid,
        "judge_usd_saved": None if full is None or paid is None else full - paid,
        "judge_errors": outcome.failures[JUDGE_ERROR],
    }


def _refuse_incomplete(
    step: Any, outcome: JudgeOutcome, n_requests: int, allowed: int, share: float
) -> None:
    """Raise (the step is not finished) when more items failed in the judge than allowed."""
    failed = [r.response.error or "?" for r in outcome.records.values() if r.failure == JUDGE_ERROR]
    if len(failed) <= allowed:
        return
    reasons = Counter(_reason(e) for e in failed if e != NOT_ASKED)
    not_asked = sum(e == NOT_ASKED for e in failed)
    what = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common(3))
    if not_asked:
        what += (", " if what else "") + f"{not_asked} not asked after those"
    answered = n_requests - len(failed)
    raise UserError(
        f"{step.id}: {len(failed)} of {n_requests} judge requests failed ({what}), more than "
        f"the {share:.0%} judge.max_failed_share allows; not finished, and the {answered} "
        "answered are cached, so a rerun asks only for the missing ones"
    )


def _reason(error: str) -> str:
    """'server_error after 4 attempt(s): ...' -> 'server_error'."""
    head = error.split(":", 1)[0]
    return head.split(" after ", 1)[0].strip() or "error"


class _BudgetGuard:
    """Under --budget-usd: reserve this step's estimate, then check spend before each batch."""

    def __init__(
        self, plan: Plan, step: Step, snapshot: str, prices: dict, ledger: Any, attempt: int
    ):
        self.plan, self.step, self.snapshot, self.prices = plan, step, snapshot, prices
        self.ledger, self.attempt = ledger, attempt
        self.budget = float(plan.experiment["budget_usd"])
        self.usage: JudgeUsage | None = None

    @classmethod
    def start(cls, plan, step, snapshot, requests, cache, prices) -> _BudgetGuard | None:
        from harness.cost.budget import measured_usd
        from harness.cost.judge_budget import SpendLedger, ledger_path
        from harness.cost.judge_estimate import requests_usd
        from harness.judging.prices import is_offline

        budget = plan.experiment.get("budget_usd")
        if budget is None or is_offline(snapshot):
            return None
        hits = cache.get_many(snapshot, requests)
        estimate = requests_usd(
            [r for r, hit in zip(requests, hits, strict=True) if hit is None], snapshot, prices
        )
        if estimate is None:
            raise UserError(
                f"{step.id}: judge snapshot {snapshot!r} has no price in the registry, so "
                f"--budget-usd cannot be kept; give it one in a --registry file ([judges."
                f"{snapshot}] input_usd_per_mtok, output_usd_per_mtok); not started"
            )
        ledger = SpendLedger(ledger_path(plan.run_dir))
        attempt = ledger.reserve(step.key, step.id, estimate, float(budget), measured_usd(plan))
        return cls(plan, step, snapshot, prices, ledger, attempt)

    def _record(self, usage: JudgeUsage) -> None:
        from harness.judging.prices import judge_usd

        paid = judge_usd(self.snapshot, usage.prompt_tokens, usage.completion_tokens, self.prices)
        self.ledger.charge(self.attempt, paid or 0.0)

    def before_batch(self, usage: JudgeUsage, batch: list) -> None:
        from harness.cost.budget import measured_usd
        from harness.cost.judge_estimate import requests_usd

        self.usage = usage  # judge_all's running total: finish() records its last batch
        self._record(usage)
        batch_usd = requests_usd(batch, self.snapshot, self.prices) or 0.0
        spent = measured_usd(self.plan)
        self.ledger.check(self.attempt, self.step.id, self.budget, spent, batch_usd)

    def finish(self) -> None:
        """Record the last batch's payment and release the reservation (also on failure)."""
        if self.usage is not None:
            self._record(self.usage)
        self.ledger.close(self.attempt)
