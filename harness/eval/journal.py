"""A generate step's journal of finished batches, so a crashed attempt's answers are kept.

After each batch the engine appends one line per answered request (its id, request_sha256, the
sha256 of the batch it was answered in, and its ModelOutput) and syncs the file. The next attempt
reuses a batch only when every request of it is in the journal with the same request and the same
batch: an answer depends on its batch's other prompts (left padding), so a batch is reused whole
or recomputed whole, and a resumed step writes the outputs an uninterrupted one writes. A line cut
short by the crash is ignored. The wall time of the attempts so far is kept beside the journal:
the GPU time of a crashed attempt was paid for, and the step's cost says so.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.protocols import ModelOutput
from harness.specs import sha256_of
from harness.support.atomic import write_atomic

JOURNAL = "answers.partial.jsonl"
WALL = "attempts_wall.json"


def request_sha256(request: Any) -> str:
    """The request's sha256 as outputs.jsonl records it (its dataclass fields as JSON)."""
    return sha256_of(asdict(request))


def batch_sha256(batch: Sequence[Any]) -> str:
    return sha256_of([request_sha256(r) for r in batch])


def clear_all_but_journal(folder: Path) -> None:
    """Empty a work folder except for the journal and the wall of earlier attempts: files an
    attempt left half-written (an image, outputs.jsonl) are made again, never trusted."""
    import shutil

    for path in folder.iterdir():
        if path.name in (JOURNAL, WALL):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    """The journal's readable lines. A last line the crash cut short is cut off the file, so
    that the lines appended next start on a line of their own."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    whole = data[: data.rfind(b"\n") + 1]
    if len(whole) < len(data):
        os.truncate(path, len(whole))
    for raw in whole.splitlines():
        try:
            line = json.loads(raw)
            ModelOutput(**line["output"])
        except (ValueError, KeyError, TypeError):
            continue  # a corrupt line: its batch is answered again
        if isinstance(line.get("id"), str):
            yield line


class AnswerJournal:
    """The answers earlier attempts of a step finished, and the journal this attempt adds to."""

    def __init__(self, folder: Path, log: Callable[[str], None] | None = None):
        self.path, self.wall_path = folder / JOURNAL, folder / WALL
        self.log = log
        self.earlier = {line["id"]: line for line in _lines(self.path)}
        self.earlier_wall_s = _read_wall(self.wall_path)
        self.started = time.perf_counter()
        self.reused = 0

    def reusable(self, batch: Sequence[Any]) -> list[ModelOutput] | None:
        """The batch's outputs from an earlier attempt, or None when it must be answered."""
        key = batch_sha256(batch)
        lines = [self.earlier.get(req.id) for req in batch]
        if all(
            line is not None
            and line.get("batch_sha256") == key
            and line.get("request_sha256") == request_sha256(req)
            for req, line in zip(batch, lines, strict=True)
        ):
            return [ModelOutput(**line["output"]) for line in lines]
        return None

    def resuming(self, reused: int, total: int) -> None:
        """Say how many answers an earlier attempt saved (nothing when none)."""
        self.reused += reused
        if reused and self.log:
            self.log(
                f"resuming: {reused} of {total} answers from an earlier attempt "
                f"(earlier attempts answered for {self.earlier_wall_s:.1f}s)"
            )

    def record(self, batch: Sequence[Any], outputs: Sequence[ModelOutput]) -> None:
        """Append a finished batch's answers and sync them to disk, then the wall so far."""
        key = batch_sha256(batch)
        by_id = {out.id: out for out in outputs}
        text = "".join(
            json.dumps(
                {
                    "id": req.id,
                    "request_sha256": request_sha256(req),
                    "batch_sha256": key,
                    "output": by_id[req.id].to_json(),
                },
                sort_keys=True,
            )
            + "\n"
            for req in batch
        )
        with open(self.path, "a") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        self.save_wall()

    def wall_s(self) -> float:
        """Seconds spent answering, this attempt and the earlier ones together."""
        return self.earlier_wall_s + time.perf_counter() - self.started

    def save_wall(self) -> float:
        """Keep the wall so far for the next attempt; returns it. A full disk loses only that
        (never masks the error that ends the attempt)."""
        wall = self.wall_s()
        try:
            write_atomic(self.wall_path, json.dumps({"wall_s": wall}) + "\n")
        except OSError:
            pass
        return wall

    def remove(self) -> None:
        """The step finished: its folder holds what a step that never crashed holds."""
        self.path.unlink(missing_ok=True)
        self.wall_path.unlink(missing_ok=True)


def _read_wall(path: Path) -> float:
    try:
        wall = json.loads(path.read_text())["wall_s"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
    return float(wall) if isinstance(wall, int | float) and wall >= 0 else 0.0
