"""SIGINT, SIGTERM and SIGHUP to a run: stop cleanly instead of dying mid-write or orphaning
workers.

While a run walks its steps, any of them raises `Interrupted` in the main thread (a step
running in this process unwinds; the runner then stops the executor's workers). Later signals
are ignored until the run has stopped its workers, so the stop itself is not cut short.

SIGHUP means the terminal went away (an ssh connection dropped): the run's output to that
terminal is silenced first, since every write to it would fail and cut the stop short. Under
`nohup` (SIGHUP ignored) the run keeps ignoring it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
HANGUP = signal.SIGHUP


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

    terminals = [fd for fd in (1, 2) if _is_terminal(fd)]

    def handler(signum: int, frame: FrameType | None) -> None:
        if signum == HANGUP:
            _silence(terminals)
        received.append(signum)
        if len(received) == 1:
            raise Interrupted(signum)

    handled = [*SIGNALS]
    if signal.getsignal(HANGUP) is signal.SIG_DFL:  # not under nohup
        handled.append(HANGUP)
    previous = {signum: signal.signal(signum, handler) for signum in handled}
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _silence(fds: list[int]) -> None:
    """Point the hung-up terminal's descriptors at /dev/null: writes then succeed, unread."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in fds:
        try:
            os.dup2(null, fd)
        except OSError:
            pass
    os.close(null)
