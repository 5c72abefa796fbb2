"""How a running step tells the run how far it has got: a small JSON file the runner reads.

The step's job points HARNESS_PROGRESS_FILE at `logs/<step>.progress.json` in the run folder
while it runs, so whatever runs the step (this process, a worker, ranks it launches, a cluster
node sharing the run folder) reports through the same file. `report(done, total, unit)` is
cheap to call every step or batch: it writes at most once a second (and always the last count),
atomically, from rank 0 only. Readers ignore a missing or unreadable file.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.support.atomic import write_atomic

PROGRESS_ENV = "HARNESS_PROGRESS_FILE"
MIN_WRITE_INTERVAL_S = 1.0

_last_write: dict[str, float] = {}


@dataclass(frozen=True)
class StepProgress:
    done: int
    total: int
    unit: str  # "step" (optimizer steps), "items" (requests generated, judged), or another

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total > 0 else None

    def label(self) -> str:
        """`step 120/400` for training, `64/200` for items, `<unit> k/n` for others."""
        count = f"{self.done}/{self.total}"
        return count if self.unit == "items" else f"{self.unit} {count}"


def progress_path(run_dir: Path | str, step_id: str) -> Path:
    return Path(run_dir) / "logs" / (step_id.replace("/", "__") + ".progress.json")


def report(done: int, total: int, unit: str = "items") -> None:
    """Record that `done` of `total` units of the running step are finished (no-op outside a
    step, and on ranks other than 0)."""
    path = os.environ.get(PROGRESS_ENV)
    if not path or os.environ.get("RANK", "0") != "0":
        return
    now = time.monotonic()
    if done < total and now - _last_write.get(path, -1e9) < MIN_WRITE_INTERVAL_S:
        return
    _last_write[path] = now
    body = json.dumps({"done": int(done), "total": int(total), "unit": unit})
    try:
        write_atomic(path, body, durable=False)
    except OSError:  # progress is a courtesy: it never fails the step
        pass


def read(path: Path) -> StepProgress | None:
    """The step's last report, or None when there is none yet (or it cannot be read)."""
    try:
        body = json.loads(Path(path).read_text())
        return StepProgress(int(body["done"]), int(body["total"]), str(body.get("unit", "items")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def reporting_to(path: Path) -> Iterator[None]:
    """Point `report` (here and in processes started meanwhile) at `path`; an earlier attempt's
    file is removed first, and the file is removed when the step ends."""
    path = Path(path)
    path.unlink(missing_ok=True)
    if threading.current_thread() is not threading.main_thread():
        # steps run on threads share one environment: saving and restoring it from several
        # threads at once would leave another step's path behind, so they report nothing
        yield
        return
    before = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = str(path)
    _last_write.pop(str(path), None)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = before
        path.unlink(missing_ok=True)
