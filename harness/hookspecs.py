"""The hooks a plugin implements. Each receives a `register` callable and calls it per object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("harness")
hookimpl = pluggy.HookimplMarker("harness")

Register = Callable[[Any], None]


@hookspec
def register_backends(register: Register) -> None:
    """Register training backends (objects satisfying harness.protocols.TrainingBackend)."""


@hookspec
def register_benchmarks(register: Register) -> None:
    """Register benchmarks (objects satisfying harness.protocols.Benchmark)."""


@hookspec
def register_judges(register: Register) -> None:
    """Register judge factories: callables taking a JudgeSpec and returning a Judge."""


@hookspec
def register_executors(register: Register) -> None:
    """Register executor factories: callables taking an ExecutorSpec and returning an Executor."""
