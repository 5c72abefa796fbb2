"""Stage 2 on ranks that Slurm starts: one task per device, each with the rank Slurm gives it.

On CPU hardware with several devices (ranks), and on hardware of several nodes, a stage-2 job
asks Slurm for one task per rank; srun starts them and submitit runs the same pickled job in
each. Task 0 runs the step as any other (the store, the step's lock, its log and manifest) and
trains as rank 0; every other task only trains, as its rank, into the same work folder, and
prints its log lines to its own Slurm output. Each takes RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT from SLURM_* (`harness.train.settings.slurm_ranks`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RankedStepJob:
    """A step job for a Slurm job of several tasks (ranks)."""

    job: Any  # harness.run.jobs.StepJob

    @property
    def run_dir(self) -> str:
        return self.job.run_dir

    def __call__(self) -> Any:
        if int(os.environ.get("SLURM_PROCID", "0")) == 0:
            return self.job()
        return train_as_peer(self.job.run_dir, self.job.step_id)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """On preemption every task is requeued; training resumes from the work folder."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


def train_as_peer(run_dir: str, step_id: str) -> None:
    """Train stage 2 as a rank other than 0: no store writes, no log, no manifest."""
    from harness.plan.plan_file import Plan
    from harness.plugins import get_plugins
    from harness.train import run_stage2

    plan = Plan.load(Path(run_dir))
    step = plan.step(step_id)
    backend = get_plugins().backend(step.plugin[1])
    (stage1,) = [plan.store.step_dir(d.key) for d in plan.deps(step) if d.kind == "stage1"]
    work = plan.store.work_dir(step.key)
    work.mkdir(parents=True, exist_ok=True)
    tasks = os.environ.get("SLURM_STEP_NUM_TASKS", "?")
    print(f"harness: {step_id}: rank {os.environ['SLURM_PROCID']} of {tasks} (Slurm)", flush=True)
    run_stage2(plan.cells[step.cell], backend, stage1, work, _printed(step_id))


def _printed(step_id: str):
    """The step's log lines, into this task's own Slurm output (the step's log is task 0's)."""
    return lambda line: print(f"harness: {step_id}: {line}", flush=True)
