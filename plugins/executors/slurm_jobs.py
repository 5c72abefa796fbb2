"""The jobs a run has in Slurm: noted per step, found again by a rerun, cancelled on a stop.

The driver notes which job runs which step (RUN_DIR/slurm/submitted.json), and a step's lock
names the Slurm job holding it (harness.support.locks). A rerun after its driver died finds a
step's job that Slurm still has, pending or running, and watches it instead of submitting the
step twice. An interrupted run cancels what it has in flight with one `scancel`.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

from harness.support.atomic import write_atomic

log = logging.getLogger("harness.slurm")
SUBMITTED = "submitted.json"  # in RUN_DIR/slurm: the job each step was submitted to


def remember(jobs: list[Any], handles: list[Any]) -> None:
    """Note which Slurm job runs which step, for a rerun after this driver died."""
    entries = {
        job.step_id: {"job_id": handle.job_id, "key": job.key}
        for job, handle in zip(jobs, handles, strict=True)
        if getattr(job, "key", None) and type(handle).__name__ == "SlurmStepHandle"
    }
    if not entries:
        return
    path = Path(jobs[0].run_dir) / "slurm" / SUBMITTED
    write_atomic(path, json.dumps({**_read_submitted(path), **entries}, indent=1) + "\n")


def earlier_job(job: Any, watcher: Any) -> Any:
    """The step's job from an earlier run that Slurm still has, pending or running: the one
    this run folder submitted it to, or the one its lock names (another run folder's)."""
    key, store_root = getattr(job, "key", None), getattr(job, "store_root", None)
    if key is None or store_root is None:
        return None
    from harness_plugins.executors.slurm_state import EarlierJob

    from harness.plan.store import Store
    from harness.support.locks import slurm_job_of

    store = Store(Path(store_root))
    recorded = _read_submitted(Path(job.run_dir) / "slurm" / SUBMITTED).get(job.step_id, {})
    candidates = [recorded.get("job_id")] if recorded.get("key") == key else []
    try:
        candidates.append(slurm_job_of(store.step_lock_path(key).read_text()))
    except OSError:
        pass
    alive = [j for j in dict.fromkeys(candidates) if j and _still_there(watcher, j)]
    if not alive:
        return None
    log.warning(
        "%s: slurm job %s of an earlier run is still running it: waiting for that job "
        "instead of submitting another",
        job.step_id,
        alive[0],
    )
    return EarlierJob(alive[0], watcher, store, key, job.step_id)


def cancel(live: list[Any], watcher: Any) -> None:
    """Cancel the jobs among `live` that Slurm has not ended (one squeue call first), and
    submitit's local jobs (options.cluster = "local") with SIGINT."""
    from harness_plugins.executors.slurm_state import ENDED, GONE, EarlierJob, SlurmStepHandle

    slurm = [h for h in live if isinstance(h, (SlurmStepHandle, EarlierJob))]
    if slurm:
        watcher.update()  # jobs that ended meanwhile are left alone
        slurm = [h for h in slurm if h.state not in ENDED | {GONE}]
        ids = sorted({h.job_id for h in slurm}, key=job_order)
        if ids:
            _scancel(ids)
    for handle in live:
        if type(handle).__name__ == "LocalJob":
            handle.cancel(check=False)


def finished(handle: Any) -> bool:
    """Whether a handle's result is there, without asking the cluster."""
    paths = getattr(getattr(handle, "job", handle), "paths", None)
    return paths is not None and paths.result_pickle.exists()


def job_order(job_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in job_id.split("_") if part.isdigit())


def _read_submitted(path: Path) -> dict[str, dict[str, str]]:
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _still_there(watcher: Any, job_id: str) -> bool:
    """Whether Slurm still has the job, pending or running (one squeue call)."""
    watcher.register_job(str(job_id))
    return not watcher.is_done(str(job_id), mode="force")


def _scancel(ids: list[str]) -> None:
    """One `scancel` for every job; one line saying which were cancelled, or why none was."""
    try:
        done = subprocess.run(["scancel", *ids], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("could not cancel Slurm jobs %s (%s): run scancel", " ".join(ids), exc)
        return
    if done.returncode != 0:  # some ended since squeue answered: scancel names them
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        log.warning("scancel: %s", last)
    log.warning(
        "cancelled %d Slurm job(s) in flight: %s (their steps resume on the next run)",
        len(ids),
        " ".join(ids),
    )
