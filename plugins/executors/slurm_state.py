"""Job states from the Slurm controller (`squeue`), for clusters without an accounting database.

submitit asks `sacct` for the state of its jobs. On the many small clusters that keep no
accounting database, every one of those calls fails with a warning (about fifty per run), and a
job that ended without a result (cancelled, killed, failed to start) is never seen as finished:
its state stays UNKNOWN and the run waits forever. `squeue --states=all` answers from the
controller itself, for running jobs and for jobs that ended in the last few minutes
(MinJobAge), so this watcher asks it instead; a job the controller no longer knows has ended.
"""

from __future__ import annotations

import logging
import subprocess
import time
from typing import Any

from submitit.slurm.slurm import SlurmInfoWatcher

log = logging.getLogger("harness.slurm")

# States after which a job will not run again by itself (PREEMPTED is followed by a requeue).
ENDED = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "REVOKED",
    "SPECIAL_EXIT",
    "TIMEOUT",
}
GONE = "ENDED"  # the controller no longer knows the job: it ended (how is not known)


def parse_squeue(text: str) -> dict[str, dict[str, str]]:
    """`squeue -h -r -o %i|%T|%N` lines -> job id (`123` or `123_4`) -> State, NodeList.

    States submitit does not know as unfinished (CONFIGURING, SUSPENDED, REQUEUE_HOLD, ...)
    read as PENDING: only an ended state finishes a job."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 2 or not parts[0]:
            continue
        job_id, state = parts[0], parts[1].split()[0].upper()
        if state not in ENDED and state not in ("PENDING", "RUNNING", "COMPLETING", "PREEMPTED"):
            state = "PENDING"
        nodes = parts[2] if len(parts) > 2 else ""
        out[job_id] = {"JobID": job_id, "State": state, "NodeList": nodes}
    return out


class SqueueWatcher(SlurmInfoWatcher):
    """submitit's watcher, asking `squeue` instead of `sacct`; one log line if it cannot."""

    def __init__(self, delay_s: int = 10) -> None:
        super().__init__(delay_s=delay_s)
        self.warned = False

    def _make_command(self) -> list[str] | None:
        to_check = sorted({x.split("_")[0] for x in self._registered - self._finished})
        if not to_check:
            return None
        return ["squeue", "-h", "-r", "--states=all", "-o", "%i|%T|%N", "-j", ",".join(to_check)]

    def update(self) -> None:
        """One `squeue` call for every unfinished job; jobs it no longer lists have ended."""
        command = self._make_command()
        if command is None:
            return
        self._num_calls += 1
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._warn_once(f"squeue could not run ({exc})")
        else:
            self._read(done)
        self._last_status_check = time.time()
        for job_id in self._registered - self._finished:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)

    def _read(self, done: subprocess.CompletedProcess[str]) -> None:
        known = parse_squeue(done.stdout)
        forgotten = "Invalid job id" in done.stderr
        if done.returncode != 0 and not known and not forgotten:
            last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            self._warn_once(f"squeue failed ({last})")
            return
        self._info_dict.update(known)
        asked = set(done.args[-1].split(","))
        for job_id in self._registered - self._finished:
            if job_id.split("_")[0] in asked and job_id not in known:
                self._info_dict[job_id] = {"JobID": job_id, "State": GONE, "NodeList": ""}

    def _warn_once(self, message: str) -> None:
        if not self.warned:
            self.warned = True
            log.warning("%s: Slurm job states may be stale until it answers", message)


class SlurmStepHandle:
    """A submitted step: done() and result() as submitit's job, and a failure that names the
    Slurm state (a cancelled job: `slurm job 12_1 CANCELLED without a result`). A job of
    several tasks (ranks) gives task 0's result: the step's manifest."""

    def __init__(self, job: Any, watcher: SqueueWatcher):
        self.job = job
        self.tasks = [job.task(i) for i in range(job.num_tasks)]
        for task in {id(t): t for t in [job, *self.tasks]}.values():
            task.watcher = watcher  # states come from squeue, not sacct
        self.watcher = watcher

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    @property
    def state(self) -> str:
        return self.watcher.get_state(self.job_id, mode="cache")

    def done(self) -> bool:
        return bool(self.job.done())

    def result(self) -> Any:
        from submitit.core.utils import FailedJobError, UncompletedJobError

        finished = all(t.paths.result_pickle.exists() for t in self.tasks)
        # COMPLETED without a result file: the file may still be on its way (shared storage)
        if not finished and self.state in ENDED - {"COMPLETED"}:
            raise self._error()
        try:
            return self.job.results()[0]
        except FailedJobError as exc:  # the step raised inside the job: say what it raised
            raise ClusterJobError(
                f"slurm job {self.job_id}: {raised_in_job(str(exc))} (log: {self.job.paths.stdout})"
            ) from exc
        except UncompletedJobError as exc:
            raise self._error() from exc

    def _error(self) -> ClusterJobError:
        return ClusterJobError(
            f"slurm job {self.job_id} {self.state} without a result (log: {self.job.paths.stdout})"
        )


def raised_in_job(message: str) -> str:
    """The exception a failed job's traceback ends with, as one line: the harness's own errors
    by their message alone (as a local run shows them), others as `Type: message`."""
    trace = message.split("-" * 22)
    body = trace[1] if len(trace) >= 3 else message
    lines = [line for line in body.strip().splitlines() if line.strip()]
    if not lines:
        return "failed without a traceback"
    last = lines[-1].strip()
    name, sep, text = last.partition(": ")
    if sep and name.replace(".", "").replace("_", "").isalnum():
        short = name.rsplit(".", 1)[-1]
        return text if short in ("UserError", "PluginError") else f"{short}: {text}"
    return last


class ClusterJobError(RuntimeError):
    """A cluster job ended without running its step to the end (cancelled, killed, timed out)."""


class EarlierJob:
    """A step that a job of an earlier run is still running (that run's driver died, its jobs ran
    on): watched until the job ends instead of submitted twice. Its result is the step's manifest
    once the store has it; a job that ended without finishing the step fails it, by state."""

    def __init__(self, job_id: str, watcher: SqueueWatcher, store: Any, key: str, step_id: str):
        self.job_id, self.watcher = job_id, watcher
        self.store, self.key, self.step_id = store, key, step_id
        watcher.register_job(job_id)

    @property
    def state(self) -> str:
        return self.watcher.get_state(self.job_id, mode="cache")

    def done(self) -> bool:
        return self.watcher.is_done(self.job_id, mode="standard")

    def result(self) -> Any:
        if self.store.done(self.key):
            return self.store.manifest(self.key)
        raise ClusterJobError(
            f"slurm job {self.job_id} of an earlier run ended {self.state} without finishing "
            f"{self.step_id}"
        )
