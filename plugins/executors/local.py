"""The local executor: steps run in this process, or on a pool of worker processes.

With `max_parallel` > 1, steps run in that many spawned worker processes (reused between steps,
so imports happen once per worker), each with one intra-op thread per core it shares. Multi-GPU
training steps launch their own `accelerate launch` / `deepspeed` processes from inside the
step, so the executor itself stays simple.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from harness.hookspecs import hookimpl

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
        return self._pool.submit(job)


def _worker_init(threads: int) -> None:
    """Share the cores between workers instead of oversubscribing them."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)


@hookimpl
def register_executors(register):
    register(LocalExecutor)
