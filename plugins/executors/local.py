"""The local executor: steps run in this process, or on a pool of worker processes.

With `max_parallel` > 1, steps run in that many spawned worker processes (reused between steps,
so imports happen once per worker), each with one intra-op thread per core it shares. Multi-GPU
training steps launch their own `accelerate launch` / `deepspeed` processes from inside the
step, so the executor itself stays simple.

Each worker leads its own process group (with whatever its step launches), so that `stop` can end
a worker and everything under it at once, and a Ctrl-C at the terminal reaches only the main
process, which then stops the workers itself. A worker told to stop (SIGTERM) unwinds its step
first, so the step's own cleanup runs (launched training processes, its lock), then exits.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from harness.hookspecs import hookimpl

# how long stopped workers get to unwind their steps (a launched training group gets 10 s)
STOP_GRACE_S = 20.0

if TYPE_CHECKING:
    from harness.specs import ExecutorSpec


class _Done:
    """A finished step's handle (what synchronous runs return)."""

    def __init__(self, job: Callable[[], Any]):
        self._value: Any = None
        self._error: BaseException | None = None
        try:
            self._value = job()
        except Exception as exc:
            self._error = exc

    def done(self) -> bool:
        return True

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


class LocalExecutor:
    name = "local"

    def __init__(self, spec: ExecutorSpec | None = None):
        from harness.specs import ExecutorSpec

        self.spec = spec or ExecutorSpec()
        self.capacity = max(1, self.spec.max_parallel)
        self._pool = None
        if self.capacity > 1:
            threads = max(1, (os.cpu_count() or 1) // self.capacity)
            self._pool = ProcessPoolExecutor(
                self.capacity,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(threads,),
            )

    def submit(self, job: Callable[[], Any], resources: dict[str, Any]) -> _Done | Future:
        if self._pool is None:
            return _Done(job)
        return self._pool.submit(_run_in_worker, job)

    def close(self) -> None:
        """Shut the idle workers down at the end of a run (none outlives it)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """End every worker and its process group: SIGTERM, then SIGKILL after `grace_s`."""
        if self._pool is None:
            return
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        pids = [p.pid for p in processes if p.pid is not None]
        _signal_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
        while _group_alive(pids) and time.monotonic() < deadline:
            time.sleep(0.05)  # what a worker launched, reparented once the worker is gone
        _signal_all(pids, signal.SIGKILL)
        for process in processes:
            process.join(timeout=grace_s)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None


def _signal_all(pids: list[int], signum: int) -> None:
    """Signal each worker's group (it leads one, see _worker_init), or the worker alone when it
    has not reached its initializer yet."""
    for pid in pids:
        try:
            os.killpg(pid, signum)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signum)
            except (ProcessLookupError, PermissionError):
                pass


def _group_alive(pids: list[int]) -> bool:
    for pid in pids:
        try:
            os.killpg(pid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            continue
    return False


class _StopWorker(SystemExit):
    """SIGTERM in a worker: unwinds the step in hand; an idle worker exits quietly."""


def _run_in_worker(job: Callable[[], Any]) -> Any:
    try:
        return job()
    except _StopWorker:  # the step has unwound (its finally blocks ran): leave at once
        os._exit(128 + signal.SIGTERM)


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the worker outright
    raise _StopWorker(128 + signum)


def _worker_init(threads: int) -> None:
    """Lead a process group of its own; unwind on SIGTERM; share the cores between workers."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)


@hookimpl
def register_executors(register):
    register(LocalExecutor)
