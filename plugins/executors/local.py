"""The local executor: steps run in this process, one at a time or on a thread pool.

Multi-GPU training steps launch their own `accelerate launch` / `deepspeed` processes from
inside the training step, so the executor itself stays simple.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from harness.hookspecs import hookimpl
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
        self.spec = spec or ExecutorSpec()
        self.capacity = max(1, self.spec.max_parallel)
        self._pool = ThreadPoolExecutor(self.capacity) if self.capacity > 1 else None

    def submit(self, job: Callable[[], Any], resources: dict[str, Any]) -> _Done | Future:
        if self._pool is None:
            return _Done(job)
        return self._pool.submit(job)


@hookimpl
def register_executors(register):
    register(LocalExecutor)
