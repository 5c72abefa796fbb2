"""Atomic file writes that concurrent writers cannot collide on.

Each write goes to its own temporary file in the target's folder (a unique name from
tempfile.mkstemp, so two processes writing the same target never share one), is flushed to disk,
then renamed over the target: a reader sees the old file or the new one, never a mix, and a
failed write leaves the old file and no temporary behind. Every write of a whole file in the
harness goes through here; `durable=False` skips the flushes to disk for files that are only a
courtesy or a cache (step progress, remembered hashes), written often and rebuilt when lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

_UMASK = os.umask(0)  # read once: mkstemp makes 0600 files, the target gets the usual mode
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[Path]:
    """A fresh temporary path beside `path` for the caller to write; it replaces `path` on exit.

    For writers that need a file name (e.g. safetensors' save_file). On an exception the
    temporary file is removed and `path` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        if durable:
            _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(target.parent)


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, durable: bool = True) -> Path:
    """Write `data` (str is written as UTF-8) to `path` atomically; returns the path."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    target = Path(path)
    with atomic_path(target, durable=durable) as tmp, open(tmp, "wb") as handle:
        handle.write(payload)
    return target


def build_folder_once(final: str | os.PathLike[str], build: Callable[[Path], None]) -> Path:
    """`final`, built first by `build(tmp)` into a temporary folder beside it and renamed into
    place when it does not exist yet. Processes that race for it wait on one lock and the first
    one builds it; a build that fails leaves no folder behind."""
    final = Path(final)
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            build(tmp)
            tmp.replace(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort: some filesystems refuse a directory fd)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
