"""The budget guard: refuse a matrix whose estimate exceeds the budget, and stop launching new
steps once measured spend would pass it."""

from __future__ import annotations

from collections.abc import Callable

from harness.cost.judge_budget import SpendLedger, ledger_path
from harness.cost.judge_estimate import unpriced_snapshots
from harness.cost.planner import efficiencies, estimate_cell, estimate_plan
from harness.errors import UserError
from harness.judging.prices import paid_usd
from harness.plan.plan_file import Plan


def refuse_over_budget(plan: Plan, budget_usd: float) -> None:
    """Refuse a plan whose estimate passes the budget, or whose judge has no price."""
    unpriced = unpriced_snapshots(plan)
    if unpriced:
        name = unpriced[0]
        raise UserError(
            f"judge snapshot {name!r} has no price in the registry, so its cost is unknown and "
            f"--budget-usd cannot be kept: give it one in a --registry file ([judges.{name}] "
            "input_usd_per_mtok = ..., output_usd_per_mtok = ...); nothing was started"
        )
    estimate = estimate_plan(plan).total.total_usd or 0.0
    if estimate > budget_usd:
        raise UserError(
            f"the plan's estimated cost ${estimate:,.2f} exceeds --budget-usd "
            f"${budget_usd:,.2f}; nothing was started"
        )


def refuse_out_of_memory(plan: Plan) -> None:
    """A cell the planner says cannot fit is refused before anything runs."""
    eff = efficiencies()
    for cid, cell in plan.cells.items():
        estimate = estimate_cell(cell, eff)
        if estimate.get("oom"):
            raise UserError(
                f"cell {cid} will not fit: {estimate['warnings'][0]}; nothing was "
                "started (use more nodes, another ZeRO stage or QLoRA)"
            )


def refuse_untrainable_cells(plan: Plan) -> None:
    """Real-size cells that cannot train here are refused before anything runs, rather than
    failing step by step later (after a download, or weeks into a CPU run): a size with no
    LLM checkpoint, and, with the local executor on a machine without a GPU, any training at
    all. Tiny sizes, finished steps and evaluation of a given checkpoint pass."""
    from harness.train.settings import cuda_devices

    pending = [c for c in plan.cells_still_training() if c.model.size.tiny is None]
    for cell in pending:
        size = cell.model.size
        if size.placeholder or not size.llm:
            raise UserError(
                f"cell {cell.id}: size {size.name!r} has no public LLM checkpoint: set `llm` in a "
                "registry file; nothing was started"
            )
    executor = (plan.experiment.get("executor") or {}).get("name", "local")
    if not pending or executor != "local" or cuda_devices() > 0:
        return
    cell = pending[0]
    raise UserError(
        f"cell {cell.id} trains the {cell.model.size.name} model on {cell.hardware.name} GPUs "
        "and this machine has none; nothing was started (run it on a GPU machine or with "
        "--executor slurm; `harness plan` shows what it would cost)"
    )


def measured_usd(plan: Plan) -> float:
    """Dollars spent so far: the plan's finished steps' GPU time at the cell's price, and judge
    dollars paid (answers served from the judge cache cost nothing). Judge steps that ran under
    a budget count from the run's spend ledger, failed attempts included; others from their
    manifests."""
    store = plan.store
    ledger = SpendLedger(ledger_path(plan.run_dir)).paid_by_step()
    total = sum(ledger.values())
    for step in plan.steps:
        if store.done(step.key):
            manifest = store.manifest(step.key)
            price = plan.cells[step.cell].hardware.usd_per_node_hour
            total += manifest.get("gpu_hours_per_node", 0.0) * price
            if step.kind == "judge" and step.key not in ledger:
                total += paid_usd(manifest) or 0.0
    return total


def spend_guard(plan: Plan, budget_usd: float) -> Callable[[], str | None]:
    def guard() -> str | None:
        spent = measured_usd(plan)
        if spent >= budget_usd:
            return f"measured spend ${spent:,.2f} reached the budget ${budget_usd:,.2f}"
        return None

    return guard
