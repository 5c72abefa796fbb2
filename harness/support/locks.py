"""Advisory file locks (flock) that name their holder, for run folders, stores and steps.

A lock is taken without waiting: a second process finds it held and is refused with one line
naming the holder (pid and host). The kernel drops a lock when its holder dies, so a crash never
leaves a folder locked. Holders are written only once every lock of a set is held, so a refused
run changes no lock file.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from harness.errors import UserError


def holder_line() -> str:
    """Who holds a lock: pid and host, and the Slurm job when inside one (a rerun whose earlier
    driver died finds that job still running the step, and waits for it: plugins' slurm)."""
    line = f"pid {os.getpid()} on {socket.gethostname()}"
    job = slurm_job_id()
    return f"{line} (slurm job {job})" if job else line


def slurm_job_id(environ: Mapping[str, str] | None = None) -> str | None:
    """This process's Slurm job as squeue names it (`12_3` for an array task), or None."""
    env = os.environ if environ is None else environ
    array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return env.get("SLURM_JOB_ID") or None


def slurm_job_of(holder: str) -> str | None:
    """The Slurm job a lock's holder line names, or None."""
    found = re.search(r"\(slurm job (\d+(?:_\d+)?)\)", holder)
    return found[1] if found else None


def acquire(path: Path, refusal: str) -> IO[str]:
    """Hold `path`'s lock or raise UserError(`refusal` + the holder); `refusal` names the thing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")
    except OSError as exc:
        raise UserError(f"cannot lock {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise UserError(f"{refusal} ({holder})") from None
    return handle


def stamp(handle: IO[str]) -> None:
    """Write who holds the lock, for the refusal another process prints."""
    handle.seek(0)
    handle.truncate()
    handle.write(holder_line())
    handle.flush()


def release(handle: IO[str]) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


@contextmanager
def holding(*locks: tuple[Path, str]) -> Iterator[None]:
    """Hold every (path, refusal) lock, in order; release them in reverse order at exit."""
    handles: list[IO[str]] = []
    try:
        for path, refusal in locks:
            handles.append(acquire(Path(path), refusal))
        for handle in handles:
            stamp(handle)
        yield
    finally:
        for handle in reversed(handles):
            release(handle)
