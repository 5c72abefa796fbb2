"""What a run shows while it walks its steps, in a terminal and in a log.

In a terminal: a live display with steps done/total, elapsed time and an estimate of what is
left, and one row per running step with its own progress (training step k/n, items k/n).
Elsewhere (CI logs, `make run | tee`, a notebook): plain lines, one per step start and end,

    [17/92] done stage2/tiny-1m_lora 1m12s

and, at most every HARNESS_PROGRESS_EVERY_S seconds (30 by default) while steps run, one line
with their progress:

    ... running: stage2/tiny-1m_full step 120/400, generate/tiny-2m_lora/mmlu 64/200 | 17/92
    done, 3m05s elapsed, 9m left   (one line)

The count is of settled steps (done, failed, skipped or reused) out of the plan's. No line is
wider than the console (COLUMNS when set, else the terminal's width, else 80 columns): longer
lines are cut with an ellipsis, never wrapped (a running line drops its elapsed time first,
then cuts its list of steps, so that the count and the estimate stay). A running step's
progress comes from the file it writes (harness.support.step_progress), read here on each refresh.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column

from harness.cost.run_estimate import Estimator, Left
from harness.plan.plan_file import Plan
from harness.support import step_progress

EVERY_ENV = "HARNESS_PROGRESS_EVERY_S"
DEFAULT_EVERY_S = 30.0


def duration(seconds: float) -> str:
    """12s, 1m12s, 2h05m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def left_text(left: Left) -> str:
    """An estimate (45s, 9m, 1h05m), rounded up past one minute; `+` when a lower bound."""
    if not left.known:
        return "?"
    s = math.ceil(left.seconds)
    minutes = math.ceil(s / 60)
    if s < 60:
        text = f"{s}s"
    elif minutes < 60:
        text = f"{minutes}m"
    else:
        text = f"{minutes // 60}h{minutes % 60:02d}m"
    return text + ("+" if left.lower_bound else "")


def cut(text: str, width: int, ellipsis: str = "…") -> str:
    """`text` no wider than `width`, its end replaced by an ellipsis when it was."""
    if len(text) <= width:
        return text
    return text[: max(0, width - len(ellipsis))] + ellipsis


def every_s() -> float:
    raw = os.environ.get(EVERY_ENV, "")
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_EVERY_S
    return value if value > 0 else DEFAULT_EVERY_S


class RunDisplay:
    """Told of each step's start and end by the runner; a thread refreshes it in between
    (the in-process executor runs a step inside the runner's own call)."""

    def __init__(self, plan: Plan, console: Console, capacity: int, reused: list[str]):
        self.plan, self.console = plan, console
        self.total = len(plan.steps)
        self.settled = set(reused)
        self.running: dict[str, float] = {}  # step id -> start (monotonic)
        self.estimator = Estimator(plan, capacity)
        for sid in reused:
            wall = _recorded_wall(plan, sid)
            if wall is not None:
                self.estimator.measured(sid, wall)
        self.live = console.is_terminal
        self.every = every_s()
        self.ellipsis = "…" if (console.encoding or "").lower().startswith("utf") else "..."
        self.began = self.last_line = time.monotonic()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress: Progress | None = None
        self._tasks: dict[str, Any] = {}
        self._first_report: dict[tuple[str, str], tuple[float, int]] = {}  # -> (time, done)
        if reused and not self.live:
            self._line(f"reused {len(reused)} finished steps from the store")

    # --- the runner's calls -------------------------------------------------------------
    def __enter__(self) -> RunDisplay:
        if self.live:
            self._progress = _live_progress(self.console)
            self._progress.__enter__()
            self._tasks["_run"] = self._progress.add_task(
                "steps", total=self.total, completed=len(self.settled), count="", left=""
            )
        tick = min(0.5, self.every / 2) if not self.live else 0.5
        self._thread = threading.Thread(target=self._ticker, args=(tick,), daemon=True)
        self._thread.start()
        self.refresh()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._progress is not None:
            with self._lock:
                self.refresh()
                self._progress.__exit__(*exc)

    def started(self, step_id: str) -> None:
        with self._lock:
            self.running[step_id] = time.monotonic()
            if self._progress is not None:
                self._tasks[step_id] = self._progress.add_task(
                    f"  {step_id}", total=None, count="", left=""
                )
            else:
                self._line(f"start {step_id}")

    def finished(self, step_id: str, error: str | None = None) -> None:
        with self._lock:
            seconds = time.monotonic() - self.running.pop(step_id, time.monotonic())
            self.settled.add(step_id)
            if error is None:
                self.estimator.measured(step_id, seconds)
            task = self._tasks.pop(step_id, None)
            if self._progress is not None and task is not None:
                self._progress.remove_task(task)
            if error is None and self._progress is None:
                self._line(f"done {step_id} {duration(seconds)}")
            elif error is not None:
                self._line(f"failed {step_id} {duration(seconds)}: {error}")
            self.refresh()

    def skipped(self, step_id: str, because: str) -> None:
        with self._lock:
            self.settled.add(step_id)
            if self._progress is None:
                self._line(f"skipped {step_id}: its input {because} did not finish")
            self.refresh()

    # --- refreshing ---------------------------------------------------------------------
    def _ticker(self, tick: float) -> None:
        while not self._stop.wait(tick):
            self.refresh()
            if not self.live and self.running and time.monotonic() - self.last_line >= self.every:
                with self._lock:
                    if self.running:
                        self.console.print(
                            self.running_line(), markup=False, highlight=False, soft_wrap=True
                        )
                    self.last_line = time.monotonic()

    def _progress_of(self) -> dict[str, step_progress.StepProgress | None]:
        return {
            sid: step_progress.read(step_progress.progress_path(self.plan.run_dir, sid))
            for sid in self.running
        }

    def _left(self, reports: dict[str, step_progress.StepProgress | None]) -> Left:
        now = time.monotonic()
        busy = self.settled | set(self.running)
        pending = [s.id for s in self.plan.steps if s.id not in busy]
        running = {
            sid: (now - start, self._own_left(sid, start, reports.get(sid), now))
            for sid, start in self.running.items()
        }
        return self.estimator.left(pending, running)

    def _own_left(
        self, sid: str, start: float, report: step_progress.StepProgress | None, now: float
    ) -> float | None:
        """Seconds a reporting step still needs at its pace since its first report (loading a
        model comes before it), else at its pace since it started."""
        if report is None or report.total <= 0:
            return None
        first = self._first_report.setdefault((sid, report.unit), (now, report.done))
        since, done_then = first
        remaining = max(0, report.total - report.done)
        if report.done > done_then and now > since:
            return remaining * (now - since) / (report.done - done_then)
        if report.done > 0:
            return remaining * (now - start) / report.done
        return None

    def refresh(self) -> None:
        """Read the running steps' progress (their pace is measured from the first report
        seen) into the live display, if there is one."""
        with self._lock:
            reports = self._progress_of()
            left = self._left(reports)
            if self._progress is None:
                return
            self._progress.update(
                self._tasks["_run"],
                completed=len(self.settled),
                count=f"{len(self.settled)}/{self.total}",
                left=f"{left_text(left)} left",
            )
            for sid, report in reports.items():
                if report is not None and sid in self._tasks:
                    self._progress.update(
                        self._tasks[sid],
                        total=report.total,
                        completed=report.done,
                        count=report.label(),
                    )

    def running_line(self) -> str:
        """`... running: <each step's progress> | <done>/<total> done, <elapsed>, <left>`.
        Too wide, it drops the elapsed time first, then cuts the list of steps."""
        with self._lock:
            reports = self._progress_of()
            now = time.monotonic()
            parts = []
            for sid, start in self.running.items():
                report = reports.get(sid)
                progress = report.label() if report else f"({duration(now - start)})"
                parts.append((sid, progress))
            count = f" | {len(self.settled)}/{self.total} done, "
            left = f"{left_text(self._left(reports))} left"
        head, width = "... running: ", self.console.width
        steps = ", ".join(f"{sid} {progress}" for sid, progress in parts)
        long = f"{count}{duration(now - self.began)} elapsed, {left}"
        for tail in (long, count + left):
            if len(head) + len(steps) + len(tail) <= width:
                return head + steps + tail
        room = width - len(head) - len(count + left)
        if room < 8:
            return cut(head + steps + count + left, width, self.ellipsis)
        return head + self._fit(parts, room) + count + left

    def _fit(self, parts: list[tuple[str, str]], room: int) -> str:
        """Each step with its progress in an equal share of `room`, ids cut from the left (their
        ends tell steps apart: the cell, the benchmark); the list's end is cut if still long."""
        share = (room - 2 * (len(parts) - 1)) // len(parts)
        fitted = []
        for sid, progress in parts:
            keep = share - len(progress) - 1
            if len(sid) > keep:
                sid = self.ellipsis + sid[len(sid) - max(4, keep - len(self.ellipsis)) :]
            fitted.append(f"{sid} {progress}")
        return cut(", ".join(fitted), room, self.ellipsis)

    def _line(self, event: str) -> None:
        text = f"[{len(self.settled)}/{self.total}] {event}"
        if self._progress is not None:  # above the live display
            self._progress.console.print(
                cut(text, self.console.width, self.ellipsis), markup=False, highlight=False
            )
            return
        self.console.print(
            cut(text, self.console.width, self.ellipsis),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _recorded_wall(plan: Plan, step_id: str) -> float | None:
    try:
        wall = plan.store.manifest(plan.step(step_id).key).get("wall_s")
        return float(wall) if wall is not None else None
    except Exception:
        return None


def _live_progress(console: Console) -> Progress:
    """Step ids are what gets cut in a narrow terminal: the other columns keep their width."""
    bar = 24 if console.width >= 110 else 10
    others = bar + len("LLM step 600/600") + len("0:00:00") + len("1h05m+ left") + 4
    return Progress(
        TextColumn(
            "{task.description}",
            table_column=Column(
                no_wrap=True, overflow="ellipsis", max_width=max(12, console.width - others)
            ),
        ),
        BarColumn(bar_width=bar),
        TextColumn("{task.fields[count]}", table_column=Column(no_wrap=True)),
        TimeElapsedColumn(),
        TextColumn("{task.fields[left]}", table_column=Column(no_wrap=True)),
        console=console,
        transient=False,
        refresh_per_second=4,
    )
