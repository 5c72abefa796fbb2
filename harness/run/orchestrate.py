"""The run, plan and eval commands: build the plan, check it, run it, collect, report."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.model.hub_sources import check_model_sources
from harness.plan.build import Options, build_plan
from harness.plan.plan_file import Plan
from harness.plugins import Plugins, get_plugins
from harness.protocols import Executor, JobScripts, RunsHere


def make_executor(plan: Plan, plugins: Plugins) -> Executor:
    from harness.specs import ExecutorSpec

    spec = ExecutorSpec.model_validate(plan.experiment.get("executor") or {})
    return plugins.executor(spec.name)(spec)


def check_judges(plan: Plan, plugins: Plugins) -> None:
    """Build and check every judge a judged benchmark will call, before anything trains."""
    seen = set()
    for cell in plan.cells.values():
        judged = [e for e in cell.evals if plugins.benchmark(e.benchmark).judged]
        key = cell.judge.canonical()
        if judged and key not in seen:
            seen.add(key)
            plugins.judge(cell.judge.name)(cell.judge).check()


def _report(run_dir: Path, console: Console) -> None:
    try:
        from harness.report import print_report
    except ImportError:
        console.print(f"results: {run_dir / 'results.json'}")
        return
    print_report(run_dir, console=console)


def execute(plan: Plan, plugins: Plugins, console: Console) -> int:
    """Run a checked plan. Nothing in the run folder is written before this point, and the run
    folder and the store stay locked (released last, after any workers have stopped)."""
    from harness.cost.budget import spend_guard
    from harness.run.collect import write_results
    from harness.run.runner import RunSummary, close_executor, print_summary, run_plan
    from harness.support import locks
    from harness.support.interrupts import Interrupted, raising_interrupted

    check_judges(plan, plugins)
    executor = make_executor(plan, plugins)  # checks its settings (a cluster's partition)
    budget = plan.experiment.get("budget_usd")
    run_lock = (plan.run_dir / ".lock", f"run folder {plan.run_dir} is locked by another run")
    with locks.holding(run_lock, plan.store.lock_target()):
        plan.save()
        guard = spend_guard(plan, budget) if budget is not None else None
        with raising_interrupted():
            try:
                summary = run_plan(plan, executor, console, spend_guard=guard)
            except Interrupted as exc:  # came just before or after the walk itself
                close_executor(executor, stop=True, signum=exc.signum)
                summary = RunSummary(interrupted=exc.signum)
                summary.reused = [s.id for s in plan.steps if plan.store.done(s.key)]
        path, kept = write_results(plan, summary)
    if summary.interrupted is not None:
        console.print(
            f"interrupted: {summary.finished} steps finished, "
            f"{len(summary.in_flight)} in flight kept for resume",
            highlight=False,
            soft_wrap=True,
        )
        return 128 + summary.interrupted
    print_summary(plan, summary, console)
    for cid in kept:
        console.print(
            f"results.json keeps the earlier scores of {cid}: this run did not finish it",
            highlight=False,
            soft_wrap=True,
        )
    _report(plan.run_dir, console)
    console.print(f"results: {path}", highlight=False, soft_wrap=True)
    return 0 if summary.ok else 1


def run_command(opts: Options) -> int:
    plugins = get_plugins()
    plan = build_plan(opts, plugins)
    console = Console()
    from harness.cost.budget import (
        refuse_out_of_memory,
        refuse_over_budget,
        refuse_untrainable_cells,
    )

    refuse_out_of_memory(plan)
    budget = plan.experiment.get("budget_usd")
    if budget is not None:
        refuse_over_budget(plan, budget)
    refuse_untrainable_cells(plan)
    # after: a refused CPU run touches no network
    check_model_sources(cell.model for cell in plan.cells_still_training())
    return execute(plan, plugins, console)


def eval_command(opts: Options, model_ref: str, prompt: str | None = None) -> int:
    from harness.plan.eval_model import checkpoint_plan

    plugins = get_plugins()
    plan = checkpoint_plan(opts, plugins, model_ref, prompt)
    return execute(plan, plugins, Console())


def plan_rows(plan: Plan) -> dict[str, Any]:
    """What `harness plan` shows: cells, steps by kind and state, estimates."""
    store = plan.store
    from harness.cost.planner import estimate_plan

    estimates = estimate_plan(plan)
    cells = []
    for cid, cell in plan.cells.items():
        steps = [s for s in plan.steps if cid in s.cells]
        cells.append(
            {
                "id": cid,
                "axes": cell.axes,
                "hardware": cell.hardware.name,
                "steps": len(steps),
                "done": sum(store.done(s.key) for s in steps),
                "estimate": estimates.cells.get(cid, {}),
            }
        )
    kinds = Counter(s.kind for s in plan.steps)
    done = Counter(s.kind for s in plan.steps if store.done(s.key))
    return {
        "run_dir": str(plan.run_dir),
        "cells": cells,
        "steps": {k: {"total": kinds[k], "done": done[k]} for k in kinds},
        "total_estimate": estimates.total.as_json(),
    }


def plan_command(opts: Options, as_json: bool) -> int:
    plugins = get_plugins()
    plan = build_plan(opts, plugins)
    rows = plan_rows(plan)
    if as_json:
        print(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return 0
    from harness.plan.table import plan_table, savings_table

    console = Console()
    console.print(plan_table(rows))
    savings = savings_table(rows)  # with a calibration: measured against Table 4
    if savings is not None:
        console.print(savings)
    parts = [f"{k} {v['total']} ({v['done']} done)" for k, v in rows["steps"].items()]
    console.print("steps: " + ", ".join(parts), highlight=False)
    _show_job_scripts(plan, plugins, console)
    for cell in rows["cells"]:
        for warning in cell["estimate"].get("warnings", []):
            console.print(f"[yellow]warning[/yellow] {cell['id']}: {warning}", highlight=False)
    from harness.config.fairness import plan_warnings

    for warning in plan_warnings(plan, plugins):  # methods compared at different settings
        console.print(f"[yellow]warning[/yellow] {warning}", highlight=False, soft_wrap=True)
    return 0


def _show_job_scripts(plan: Plan, plugins: Plugins, console: Console) -> None:
    """For cluster executors: the job script of each distinct resource shape."""
    executor = make_executor(plan, plugins)
    if not isinstance(executor, JobScripts):
        return
    from harness.run.runner import _resources

    shown, here = set(), []
    for step in plan.steps:
        res = _resources(plan, step)
        if isinstance(executor, RunsHere) and executor.runs_here(res):
            here += [step.kind] if step.kind not in here else []
            continue
        shape = repr(sorted(executor.parameters(res).items()))
        if shape in shown:
            continue
        shown.add(shape)
        console.print(f"# job script for {step.kind} steps like {step.id}", highlight=False)
        console.print(
            executor.sbatch_script(res, plan.run_dir / "slurm"),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if here:
        console.print(
            f"# {' and '.join(here)} steps run in this process's workers, not as jobs "
            "(executor.options.run_here)",
            highlight=False,
            soft_wrap=True,
        )
