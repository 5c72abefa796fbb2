"""The content-addressed run store: one folder per finished step, written atomically.

A step works in `work/<key>/` and is moved to `steps/<key>/` with its manifest only when it has
finished, so a crash never leaves a finished-looking half result. Training and generation steps
keep their work folder across a crash (checkpoints, a journal of answered batches, to resume
from); other steps start from an empty one.

The manifest lists every file of the step with its size and sha256. Reuse checks that each file
is there with its size (cheap: a stat per file); `harness verify` also checks the hashes. A step
that fails either check is damaged: it is set aside under `damaged/` and run again, never
trusted. Manifests from before the file list are trusted as they were.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from harness.support import locks
from harness.support.atomic import write_atomic
from harness.support.hashing import sha256_file

MANIFEST = "manifest.json"


def file_record(path: Path) -> dict[str, Any]:
    return {"size": path.stat().st_size, "sha256": sha256_file(path)}


def list_files(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file under `folder` but the manifest: relative path -> size and sha256."""
    skip = {folder / MANIFEST}
    return {
        path.relative_to(folder).as_posix(): file_record(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path not in skip
    }


class Store:
    def __init__(self, root: Path):
        self.root = Path(root)

    # --- layout ---
    def step_dir(self, key: str) -> Path:
        return self.root / "steps" / key

    def work_dir(self, key: str) -> Path:
        return self.root / "work" / key

    def step_lock_path(self, key: str) -> Path:
        return self.root / "work" / f"{key}.lock"

    @property
    def judge_cache_path(self) -> Path:
        return self.root / "judge_cache.sqlite"

    # --- state ---
    def done(self, key: str) -> bool:
        """Finished and whole as far as a cheap look can tell (files there, sizes right)."""
        return self.step_dir(key).is_dir() and self.damage(key) is None

    def manifest(self, key: str) -> dict[str, Any]:
        return json.loads((self.step_dir(key) / MANIFEST).read_text())

    def damage(self, key: str, hashes: bool = False) -> str | None:
        """Why the stored step `key` cannot be trusted, or None (also when it is not stored).

        Checks the manifest parses and every file it lists is there with its size; with
        `hashes`, also each file's sha256."""
        folder = self.step_dir(key)
        if not folder.is_dir():
            return None
        path = folder / MANIFEST
        try:
            body = json.loads(path.read_text())
        except FileNotFoundError:
            return f"{path} is missing"
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return f"manifest {path} is not valid JSON ({exc})"
        if not isinstance(body, dict):
            return f"manifest {path} is not a JSON object"
        files = body.get("files")
        if files is None:  # written before manifests listed their files
            return None
        if not isinstance(files, dict):
            return f"manifest {path} has a malformed file list"
        for rel, want in files.items():
            problem = _file_problem(folder / rel, rel, want, hashes)
            if problem:
                return problem
        return None

    # --- writing ---
    def begin(self, key: str, keep: bool = False) -> Path:
        """A work folder for `key`; emptied unless `keep` (a step that resumes)."""
        work = self.work_dir(key)
        if work.exists() and not keep:
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        return work

    def finish(self, key: str, manifest: dict[str, Any]) -> Path:
        """Write the manifest (with the file list) and move the work folder into place."""
        work = self.work_dir(key)
        manifest = {
            **manifest,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "files": list_files(work),
        }
        body = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
        write_atomic(work / MANIFEST, body)
        final = self.step_dir(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            if self.done(key):  # a concurrent writer finished the same step first: keep theirs
                shutil.rmtree(work)
                return final
            self.set_aside(key)
        work.replace(final)
        return final

    def set_aside(self, key: str) -> Path:
        """Move a damaged step out of `steps/` (kept for a look under `damaged/`), so it reruns."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        target = self.root / "damaged" / f"{key}.{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.step_dir(key).replace(target)
        return target

    # --- one run at a time; one process per step ---
    def lock_target(self) -> tuple[Path, str]:
        """The store's lock, as `locks.holding` takes it."""
        return self.root / ".lock", f"store {self.root} is locked by another run"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store for this run; another run finds it locked and stops (exit 2)."""
        with locks.holding(self.lock_target()):
            yield

    def lock_step(self, key: str, step_id: str) -> IO[str]:
        """Hold `key`'s work folder, so two processes never run one step at once."""
        handle = locks.acquire(
            self.step_lock_path(key), f"step {step_id} is being run by another process"
        )
        locks.stamp(handle)
        return handle


def _file_problem(path: Path, rel: str, want: Any, hashes: bool) -> str | None:
    if not isinstance(want, dict) or "size" not in want:
        return f"the manifest's entry for {rel} is malformed"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"{rel} is missing"
    if size != want["size"]:
        return f"{rel} is {size} bytes, its manifest says {want['size']}"
    if hashes and file_record(path)["sha256"] != want.get("sha256"):
        return f"{rel} does not match its sha256"
    return None
