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
    """Register judge factories (harness.protocols.JudgeFactory: JudgeSpec -> Judge)."""


@hookspec
def register_executors(register: Register) -> None:
    """Register executor factories (harness.protocols.ExecutorFactory: ExecutorSpec -> Executor)."""
