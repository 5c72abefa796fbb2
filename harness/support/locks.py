"""Advisory file locks (flock) that name their holder, for run folders, stores and steps.

A lock is taken without waiting: a second process finds it held and is refused with one line
naming the holder (pid and host). The kernel drops a lock when its holder dies, so a crash never
leaves a folder locked. Holders are written only once every lock of a set is held, so a refused
run changes no lock file.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from harness.errors import UserError


def holder_line() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


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
