"""Walk the DAG on an executor: reuse finished steps, run ready ones, isolate failures.

A failed step fails only the steps that depend on it; everything else completes, and the
summary names each failure with the path of its log. A stored step that fails the store's cheap
check is named, set aside and run again. A signal (`Interrupted`) stops the executor's workers
and ends the walk; steps in flight keep their work folders for the next run to resume.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from harness.errors import PluginError, UserError
from harness.plan.dag import KINDS
from harness.plan.plan_file import Plan
from harness.protocols import BatchSubmit, Closable, Detachable, Stoppable
from harness.run.display import RunDisplay
from harness.run.jobs import StepJob, log_path
from harness.support.interrupts import Interrupted

TRAINING = ("stage1", "stage2")


@dataclass
class RunSummary:
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # step id -> one-line error
    skipped: dict[str, str] = field(default_factory=dict)  # step id -> failed dependency
    stopped: str | None = None  # why no more steps were launched (budget)
    damaged: dict[str, str] = field(default_factory=dict)  # step id -> what was wrong
    interrupted: int | None = None  # the signal that stopped the run
    in_flight: list[str] = field(default_factory=list)  # steps running when it came

    @property
    def ok(self) -> bool:
        return (
            not self.failed
            and not self.skipped
            and self.stopped is None
            and self.interrupted is None
        )

    @property
    def finished(self) -> int:
        return len(self.ran) + len(self.reused)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, UserError | PluginError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def run_plan(
    plan: Plan,
    executor: Any,
    console: Console | None = None,
    spend_guard: Callable[[], str | None] | None = None,
) -> RunSummary:
    """Run every step not yet in the store; `spend_guard` may stop new launches (budget).

    The executor is closed on the way out (its workers stopped at once on `Interrupted`)."""
    console = console or Console(stderr=True)
    summary = RunSummary()
    state = _reuse(plan, summary, console)
    pending: list[Any] = []
    try:
        _walk(plan, executor, console, spend_guard, summary, state, pending)
    except Interrupted as exc:
        summary.interrupted = exc.signum
        settled = set(state) | {s.id for s in pending}
        summary.in_flight = [s.id for s in plan.steps if s.id not in settled]
        close_executor(executor, stop=True, signum=exc.signum)
    except BaseException:  # a bug in the walk itself: no worker may outlive it
        close_executor(executor, stop=True)
        raise
    else:
        close_executor(executor, stop=False)
    return summary


def close_executor(executor: Any, stop: bool, signum: int | None = None) -> None:
    """Stop (interrupt) or shut down (normal end) an executor's workers, if it has any. A hung-up
    terminal leaves a cluster's jobs running (Detachable): a rerun waits for them."""
    if stop and signum == signal.SIGHUP and isinstance(executor, Detachable):
        executor.detach()
    elif stop and isinstance(executor, Stoppable):
        executor.stop()
    elif not stop and isinstance(executor, Closable):
        executor.close()


def _reuse(plan: Plan, summary: RunSummary, console: Console) -> dict[str, str]:
    """Finished steps to reuse; damaged ones are named, set aside and left to run again."""
    store = plan.store
    state: dict[str, str] = {}
    for step in plan.steps:
        problem = store.damage(step.key)
        if problem is not None:
            moved = store.set_aside(step.key)
            summary.damaged[step.id] = problem
            console.print(
                f"[yellow]damaged[/yellow] {step.id}: {problem}; "
                f"moved to {moved}, running it again",
                highlight=False,
                soft_wrap=True,
            )
        elif store.step_dir(step.key).is_dir():
            state[step.id] = "done"
            summary.reused.append(step.id)
    return state


def _walk(plan, executor, console, spend_guard, summary, state, pending) -> None:
    # training first: no model is evaluated before every model is trained (a CPU 4-bit forward
    # breaks later 4-bit training in its process, and worker processes are reused)
    order = {kind: i for i, kind in enumerate(KINDS)}
    pending.extend(
        sorted((s for s in plan.steps if s.id not in state), key=lambda s: order[s.kind])
    )
    running: dict[str, Any] = {}
    with RunDisplay(plan, console, executor.capacity, summary.reused) as display:
        kinds = {s.id: s.kind for s in plan.steps}
        while pending or running:
            launch = []
            training_left = any(s.kind in TRAINING for s in pending) or any(
                kinds[sid] in TRAINING for sid in running
            )
            for step in list(pending):
                if training_left and step.kind not in TRAINING:
                    continue
                dep_states = [state.get(d) for d in step.deps]
                if any(s in ("failed", "skipped") for s in dep_states):
                    bad = next(d for d in step.deps if state.get(d) in ("failed", "skipped"))
                    state[step.id] = "skipped"
                    summary.skipped[step.id] = bad
                    pending.remove(step)
                    display.skipped(step.id, bad)
                elif (
                    all(s == "done" for s in dep_states)
                    and len(running) + len(launch) < executor.capacity
                ):
                    if spend_guard is not None and summary.stopped is None:
                        summary.stopped = spend_guard()
                    if summary.stopped:
                        break
                    pending.remove(step)
                    launch.append(step)
            if launch:
                _launch(plan, executor, launch, running, display)
            if summary.stopped and not running:
                break
            finished = [sid for sid, handle in running.items() if handle.done()]
            if not finished:
                time.sleep(0.02)
                continue
            for sid in finished:
                handle = running.pop(sid)
                try:
                    handle.result()
                    state[sid] = "done"
                    summary.ran.append(sid)
                    display.finished(sid)
                except Exception as exc:  # isolate: only dependents fail
                    state[sid] = "failed"
                    summary.failed[sid] = _one_line(exc)
                    display.finished(sid, error=summary.failed[sid])


def _launch(plan, executor, steps, running, display) -> None:
    """Submit ready steps; executors that can (submit_batch) get them together (job arrays)."""
    jobs = [
        (StepJob(str(plan.run_dir), s.id, s.key, str(plan.store_root)), _resources(plan, s))
        for s in steps
    ]
    if isinstance(executor, BatchSubmit) and len(jobs) > 1:
        for step in steps:
            display.started(step.id)
        handles = executor.submit_batch(jobs)
    else:
        handles = []
        for step, (job, res) in zip(steps, jobs, strict=True):
            display.started(step.id)  # before submit: an in-process executor runs it there
            handles.append(executor.submit(job, resources=res))
    for step, handle in zip(steps, handles, strict=True):
        running[step.id] = handle


def _resources(plan: Plan, step) -> dict[str, Any]:
    """The step's resource shape, for executors that place work (GPUs, nodes, time)."""
    cell = plan.cells[step.cell]
    training = step.kind in ("stage1", "stage2")
    return {
        "kind": step.kind,
        "step": step.id,
        "nodes": cell.hardware.nodes if training else 1,
        "gpus_per_node": cell.hardware.gpus_per_node if training else 1,
        "hardware": cell.hardware.name,
        "accelerator": cell.hardware.accelerator,
        "log": str(log_path(plan.run_dir, step.id)),
        "judge_runs_model": step.kind == "judge" and _judge_runs_model(cell.judge.name),
    }


def _judge_runs_model(name: str) -> bool:
    """Whether the judge runs a model itself (a GPU on a cluster) rather than calling an API."""
    from harness.plugins import get_plugins

    return bool(getattr(get_plugins().judge(name), "runs_model", False))


def print_summary(plan: Plan, summary: RunSummary, console: Console) -> None:
    console.print(
        f"steps: {len(summary.ran)} ran, {len(summary.reused)} reused, "
        f"{len(summary.failed)} failed, {len(summary.skipped)} skipped",
        highlight=False,
        soft_wrap=True,
    )
    for sid, error in summary.failed.items():
        console.print(
            f"[red]failed[/red] {sid}: {error}\n       log: {log_path(plan.run_dir, sid)}",
            highlight=False,
            soft_wrap=True,
        )
    if summary.skipped:
        console.print(
            f"skipped {len(summary.skipped)} step(s) whose inputs failed",
            highlight=False,
            soft_wrap=True,
        )
    if summary.stopped:
        console.print(
            f"[yellow]stopped launching steps[/yellow]: {summary.stopped}",
            highlight=False,
            soft_wrap=True,
        )
