"""The slurm executor: one submitit job per step, shaped by the cell (nodes, GPUs, time);
judge and score steps run in the driver's own workers instead (`options.run_here`).

Steps that become ready together with the same resource shape go out as one job array. A
preempted job is requeued and resumes from its last checkpoint, because training steps keep
their work folder in the store. Job states come from `squeue`, not `sacct` (slurm_state:
clusters without an accounting database), and ranks Slurm starts are handled in slurm_ranks.
`options.cluster = "local"` runs the same jobs through submitit's local executor (tests, a
workstation); `"debug"` runs them in process. An interrupted run cancels the jobs it submitted
that have not ended, and a rerun waits for the jobs an earlier driver left (slurm_jobs).
docs/clusters.md says what a real cluster proved.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.executors.slurm_jobs import (
    cancel,
    earlier_job,
    finished,
    job_order,
    remember,
)

from harness.errors import UserError
from harness.hookspecs import hookimpl
from harness.plan.dag import KINDS

if TYPE_CHECKING:
    from harness.specs import ExecutorSpec

log = logging.getLogger("harness.slurm")
RUN_HERE = ("judge", "score")  # kinds the driver runs itself unless options.run_here says other
HERE_WORKERS = 4  # the driver's worker processes for them, at most


def default_partition_exists() -> bool | None:
    """True when the cluster has a default partition, None when Slurm is not reachable."""
    if shutil.which("sinfo") is None:
        return None
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # installed, but no cluster answers (no slurm.conf, controller down)
        return None
    return any(line.strip().endswith("*") for line in out.stdout.splitlines())


def requests_gpus(resources: dict[str, Any]) -> bool:
    """Whether a step's hardware has GPUs to ask Slurm for.

    Hardware with `accelerator = "cpu"` has none, and neither has the registry's `cpu` entry (the
    machine's CPU standing in for one device, as on a laptop): asking a node without `gres/gpu`
    for GPUs makes sbatch refuse the job ("Invalid generic resource (gres) specification")."""
    return resources.get("accelerator", "gpu") == "gpu" and resources.get("hardware") != "cpu"


class SlurmExecutor:
    name = "slurm"

    def __init__(self, spec: ExecutorSpec | None = None):
        from harness.specs import ExecutorSpec

        self.spec = spec or ExecutorSpec(name="slurm")
        self.cluster = self.spec.options.get("cluster")  # None = slurm; "local"; "debug"
        self.capacity = max(1, self.spec.max_parallel if self.spec.max_parallel > 1 else 256)
        self.watcher: Any = None  # one squeue watcher for every job (slurm_state)
        self.submitted: list[Any] = []  # every handle, for stop()
        self.here_kinds = run_here_kinds(self.spec.options)
        self.here: Any = None  # the driver's own workers, for those kinds (started when needed)
        if self.cluster in (None, "slurm") and self.spec.partition is None:
            if default_partition_exists() is False:
                raise UserError(
                    "this Slurm cluster has no default partition: set "
                    "executor.partition in the experiment (or --config)"
                )

    def runs_here(self, resources: dict[str, Any]) -> bool:
        """Steps of `options.run_here` kinds (judge and score by default) run in the driver's
        own workers: they need no GPU, API judges need the network that compute nodes often
        lack, and a seconds-long step would otherwise wait in the queue. A judge that runs a
        model itself goes to the cluster, with a GPU."""
        if resources.get("judge_runs_model"):
            return False
        return resources.get("kind") in self.here_kinds

    def parameters(self, resources: dict[str, Any]) -> dict[str, Any]:
        """submitit parameters for a step's resource shape.

        GPUs only for GPU hardware. Stage 1 trains in one process on at most one GPU: one
        node. A stage 2 on several CPU ranks, or on several nodes, gets one Slurm task per
        rank, and each trains as the rank Slurm gives it (slurm_ranks); several GPUs of one
        node go through the deepspeed launcher inside a job of one task."""
        kind = resources.get("kind")
        nodes = 1 if kind == "stage1" else resources.get("nodes", 1)
        devices = resources.get("gpus_per_node", 0) if kind in ("stage2", "generate") else 0
        if kind == "stage1" or resources.get("judge_runs_model"):
            devices = min(1, resources.get("gpus_per_node", 0))
        params: dict[str, Any] = {
            "timeout_min": self.spec.time_limit_min,
            "nodes": nodes,
            "name": f"harness-{kind or 'step'}",
        }
        gpus = bool(devices) and requests_gpus(resources)
        if gpus:
            params["gpus_per_node"] = devices
        ranks_from_slurm = nodes > 1 or (devices > 1 and not gpus)
        if kind == "stage2" and ranks_from_slurm and self.cluster in (None, "slurm"):
            params["tasks_per_node"] = max(1, devices)
        if self.cluster in (None, "slurm"):
            if self.spec.partition:
                params["slurm_partition"] = self.spec.partition
            if self.spec.account:
                params["slurm_account"] = self.spec.account
        return params

    def _executor(self, folder: Path, params: dict[str, Any]):
        import submitit

        ex = submitit.AutoExecutor(folder=folder / "%j", cluster=self.cluster)
        ex.update_parameters(
            **{
                k: v
                for k, v in params.items()
                if self.cluster in (None, "slurm") or not k.startswith("slurm")
            }
        )
        return ex

    def submit(self, job, resources: dict[str, Any]):
        return self.submit_batch([(job, resources)])[0]

    def submit_batch(self, jobs: list[tuple[Any, dict[str, Any]]]) -> list[Any]:
        """Submit jobs; those of one resource shape go out together as one array. A step that a
        job of an earlier run is still running is not submitted again: that job is watched."""
        groups: dict[str, list[int]] = defaultdict(list)
        params = [self.parameters(res) for _, res in jobs]
        handles: list[Any] = [
            self._workers().submit(job, res) if self.runs_here(res) else self._earlier(job)
            for job, res in jobs
        ]
        for index, p in enumerate(params):
            if handles[index] is None:
                groups[repr(sorted(p.items()))].append(index)
        for indices in groups.values():
            folder = Path(jobs[indices[0]][0].run_dir) / "slurm"
            ex = self._executor(folder, params[indices[0]])
            with ex.batch():
                submitted = [ex.submit(self._ranked(jobs[i][0], params[i])) for i in indices]
            for i, handle in zip(indices, submitted, strict=True):
                handles[i] = self._handle(handle)
            remember([jobs[i][0] for i in indices], [handles[i] for i in indices])
        self.submitted.extend(handles)
        return handles

    def _workers(self) -> Any:
        """The driver's worker processes for the steps it runs itself (judge, score)."""
        if self.here is None:
            from harness_plugins.executors.local import LocalExecutor

            from harness.specs import ExecutorSpec

            workers = max(2, min(HERE_WORKERS, self.spec.max_parallel))
            self.here = LocalExecutor(ExecutorSpec(name="local", max_parallel=workers))
        return self.here

    def close(self) -> None:
        """The run ended: the driver's workers go (the cluster's jobs have all ended)."""
        if self.here is not None:
            self.here.close()
            self.here = None

    def _watcher(self) -> Any:
        from harness_plugins.executors.slurm_state import SqueueWatcher

        if self.watcher is None:
            self.watcher = SqueueWatcher()
        return self.watcher

    def _earlier(self, job: Any) -> Any:
        """The step's job of an earlier run, still pending or running in Slurm, or None."""
        if self.cluster not in (None, "slurm"):
            return None
        return earlier_job(job, self._watcher())

    def detach(self) -> None:
        """The driver's terminal hung up: its own workers stop, the cluster's jobs run on, and
        the same command run again waits for them instead of submitting them twice."""
        if self.here is not None:
            self.here.stop()
            self.here = None
        live = [h for h in self.submitted if not finished(h) and hasattr(h, "job_id")]
        self.submitted = []
        if live:
            ids = sorted({str(h.job_id) for h in live}, key=job_order)
            log.warning(
                "%d Slurm job(s) keep running: %s (the same command waits for them)",
                len(ids),
                " ".join(ids),
            )

    def stop(self) -> None:
        """Cancel the submitted jobs that have not ended, so that an interrupted run stops
        spending GPU-hours; training steps keep their checkpoints and resume on the next run."""
        if self.here is not None:  # the driver's workers: SIGTERM, then SIGKILL
            self.here.stop()
            self.here = None
        live = [h for h in self.submitted if not finished(h)]
        self.submitted = []
        cancel(live, self.watcher)

    @staticmethod
    def _ranked(job: Any, params: dict[str, Any]) -> Any:
        """A job of several tasks runs the step on task 0 and trains as a peer on the others."""
        if params.get("tasks_per_node", 1) * params.get("nodes", 1) == 1:
            return job
        from harness_plugins.executors.slurm_ranks import RankedStepJob

        return RankedStepJob(job)

    def _handle(self, job: Any) -> Any:
        """On a real cluster, states come from squeue (see slurm_state), failures name them."""
        from harness_plugins.executors.slurm_state import SlurmStepHandle

        if type(job).__name__ != "SlurmJob":
            return job
        return SlurmStepHandle(job, self._watcher())

    def sbatch_script(self, resources: dict[str, Any], folder: Path) -> str:
        """The sbatch script a step with this shape is submitted with (as submitit writes it)."""
        from submitit.slurm.slurm import _make_sbatch_string

        names = {"name": "job_name", "timeout_min": "time", "tasks_per_node": "ntasks_per_node"}
        sbatch = {
            names.get(k, k.removeprefix("slurm_")): v for k, v in self.parameters(resources).items()
        }
        command = f"{shlex.quote(sys.executable)} -u -m submitit.core._submit {folder / '%j'}"
        return _make_sbatch_string(command=command, folder=folder / "%j", **sbatch)


def run_here_kinds(options: dict[str, Any]) -> frozenset[str]:
    """`options.run_here`: the step kinds the driver runs itself; one line naming a bad one."""
    kinds = options.get("run_here", list(RUN_HERE))
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise UserError("executor.options.run_here must be a list of step kinds")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise UserError(
            f"executor.options.run_here: unknown step kind(s) {', '.join(unknown)} "
            f"(one of {', '.join(KINDS)})"
        )
    return frozenset(kinds)


@hookimpl
def register_executors(register):
    register(SlurmExecutor)
