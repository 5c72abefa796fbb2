"""The content-addressed run store: one folder per finished step, written atomically.

A step works in `work/<key>/` and is moved to `steps/<key>/` with its manifest only when it has
finished, so a crash never leaves a finished-looking half result. Training steps keep their work
folder across a crash (checkpoints to resume from); other steps start from an empty one.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import UserError

MANIFEST = "manifest.json"


class Store:
    def __init__(self, root: Path):
        self.root = Path(root)

    # --- layout ---
    def step_dir(self, key: str) -> Path:
        return self.root / "steps" / key

    def work_dir(self, key: str) -> Path:
        return self.root / "work" / key

    @property
    def judge_cache_path(self) -> Path:
        return self.root / "judge_cache.sqlite"

    # --- state ---
    def done(self, key: str) -> bool:
        return (self.step_dir(key) / MANIFEST).is_file()

    def manifest(self, key: str) -> dict[str, Any]:
        return json.loads((self.step_dir(key) / MANIFEST).read_text())

    # --- writing ---
    def begin(self, key: str, keep: bool = False) -> Path:
        """A work folder for `key`; emptied unless `keep` (resumable training)."""
        work = self.work_dir(key)
        if work.exists() and not keep:
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        return work

    def finish(self, key: str, manifest: dict[str, Any]) -> Path:
        """Write the manifest and move the work folder into place in one rename."""
        work = self.work_dir(key)
        manifest = {**manifest, "host": socket.gethostname(), "pid": os.getpid()}
        tmp = work / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        tmp.replace(work / MANIFEST)
        final = self.step_dir(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # a concurrent writer finished the same step first: keep theirs
            shutil.rmtree(work)
            return final
        work.replace(final)
        return final

    # --- one run at a time ---
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store for this run; another run finds it locked and stops (exit 2)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise UserError(f"store {self.root} is locked by another run ({holder})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
