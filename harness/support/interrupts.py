"""SIGINT and SIGTERM to a run: stop cleanly instead of dying mid-write or orphaning workers.

While a run walks its steps, either signal raises `Interrupted` in the main thread (a step
running in this process unwinds; the runner then stops the executor's workers). Later signals
are ignored until the run has stopped its workers, so the stop itself is not cut short.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """A signal asked the run to stop; a BaseException, so no step stores it as a failure."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


@contextmanager
def raising_interrupted() -> Iterator[list[int]]:
    """Turn SIGINT/SIGTERM into `Interrupted` (once); yields the signals received so far."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) == 1:
            raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
