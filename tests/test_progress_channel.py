"""How running steps report progress (a small file any process can write), how the run turns
reports and measured steps into an estimate, and the live display in a terminal."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import _core_fakes as fakes
import pytest
from harness_plugins.executors.local import LocalExecutor
from rich.console import Console

from harness.cost.run_estimate import Estimator, Left
from harness.plan.build import Options, build_plan
from harness.plugins import get_plugins, load_plugins, reset_plugins
from harness.run.display import RunDisplay, left_text
from harness.run.runner import run_plan
from harness.support import step_progress

N_STEPS = 2 + 4 * 4  # 2 sizes x 2 learning rates, stage 1 shared per size


@pytest.fixture
def plan(tmp_path, monkeypatch):
    reset_plugins(load_plugins(extra=[fakes]))
    registry = tmp_path / "registry.toml"
    registry.write_text(fakes.REGISTRY)
    config = tmp_path / "exp.toml"
    config.write_text(fakes.EXPERIMENT)
    monkeypatch.setenv("FAKE_LEDGER", str(tmp_path / "ledger.txt"))
    opts = Options(
        matrix=["methods=fake", "lr=1e-4,2e-4"],
        config=config,
        registry=registry,
        out=tmp_path / "run",
    )
    yield build_plan(opts, get_plugins())
    reset_plugins(None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_report_writes_at_most_once_a_second_and_always_the_last(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(step_progress.time, "monotonic", clock)
    monkeypatch.delenv("RANK", raising=False)
    path = tmp_path / "logs" / "stage2__c.progress.json"
    path.parent.mkdir()
    step_progress.report(1, 10, "step")  # outside a step: nowhere to write
    assert not path.exists()
    with step_progress.reporting_to(path):
        step_progress.report(1, 10, "step")
        assert step_progress.read(path) == step_progress.StepProgress(1, 10, "step")
        clock.now += 0.5
        step_progress.report(2, 10, "step")  # too soon after the last write
        assert step_progress.read(path).done == 1
        clock.now += 0.6
        step_progress.report(3, 10, "step")
        assert step_progress.read(path).done == 3
        step_progress.report(10, 10, "step")  # the last count is always written
        assert step_progress.read(path).label() == "step 10/10"
        monkeypatch.setenv("RANK", "1")  # other ranks of a launched stage stay quiet
        clock.now += 5
        step_progress.report(1, 10, "step")
        assert step_progress.read(path).done == 10
    assert not path.exists()  # the step's end removes it
    assert step_progress.PROGRESS_ENV not in os.environ


def test_a_process_started_by_the_step_reports_through_the_same_file(tmp_path):
    path = tmp_path / "generate__c__mmlu.progress.json"
    code = "from harness.support.step_progress import report; report(64, 200, 'items')"
    with step_progress.reporting_to(path):
        subprocess.run([sys.executable, "-c", code], check=True, env=None)
        got = step_progress.read(path)
    assert got is not None and got.label() == "64/200" and got.fraction == pytest.approx(0.32)


def test_missing_or_half_written_reports_are_ignored(tmp_path):
    path = tmp_path / "p.json"
    assert step_progress.read(path) is None
    path.write_text('{"done": 3, "tot')
    assert step_progress.read(path) is None
    path.write_text(json.dumps({"done": "x", "total": 4}))
    assert step_progress.read(path) is None
    path.write_text(json.dumps({"done": 1, "total": 4, "unit": "LLM step"}))
    assert step_progress.read(path).label() == "LLM step 1/4"


def test_estimate_from_measured_steps_and_running_progress(plan):
    ids = [s.id for s in plan.steps]
    stage2 = [i for i in ids if i.startswith("stage2/")]
    generate = [i for i in ids if i.startswith("generate/")]
    est = Estimator(plan, capacity=2, planned={})
    assert est.expected(stage2[1]) is None
    est.measured(stage2[0], 60.0)
    assert est.expected(stage2[1]) == 60.0
    # two stage-2 steps pending, one running for 10 s whose pace leaves it 30 s
    left = est.left(stage2[2:], {stage2[1]: (10.0, 30.0)})
    assert left == Left(seconds=(60 + 60 + 30) / 2, lower_bound=False, known=True)
    assert left_text(left) == "2m"  # 75 s, rounded up to the minute
    assert left_text(Left(59.6, False, True)) == "1m"
    assert left_text(Left(3 * 3600 + 61, False, True)) == "3h02m"
    # generate steps: nothing measured yet, so the figure is a lower bound; and never less
    # than the running step needs (50 s of its expected 60), however many slots are free
    left = est.left(generate, {stage2[1]: (10.0, None)})
    assert left == Left(seconds=50, lower_bound=True, known=True)
    assert left_text(left) == "50s+"
    assert left_text(est.left([], {})) == "0s"


def test_planner_estimates_scale_by_how_finished_steps_compared(plan):
    a, b, c = [s.id for s in plan.steps if s.id.startswith("stage2/")][:3]
    est = Estimator(plan, capacity=1, planned={a: 100.0, b: 200.0, c: 400.0})
    assert est.expected(b) == 200.0
    est.measured(a, 50.0)  # the machine runs at half the planner's time
    assert est.expected(b) == 100.0 and est.expected(c) == 200.0


def test_the_running_line_cuts_the_step_list_not_the_count(plan, tmp_path, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    sid = next(s.id for s in plan.steps if s.id.startswith("stage2/"))
    wide = io.StringIO()
    displays = [
        RunDisplay(plan, Console(file=f, width=w), 1, reused=[])
        for f, w in ((wide, 200), (io.StringIO(), 76), (io.StringIO(), 64))
    ]
    path = step_progress.progress_path(plan.run_dir, sid)
    path.parent.mkdir(parents=True)
    with step_progress.reporting_to(path):
        step_progress.report(120, 400, "step")
        for display in displays:
            display.started(sid)
        full, short, cut = (d.running_line() for d in displays)
        other = next(s.id for s in plan.steps if s.id.startswith("generate/"))
        displays[1].started(other)
        two = displays[1].running_line()
    assert re.fullmatch(
        rf"\.\.\. running: {re.escape(sid)} step 120/400 \| 0/{N_STEPS} done, \d+s elapsed, "
        r"\S+ left",
        full,
    )
    # narrower: the elapsed time goes first, then the list of steps is cut
    count_and_left = f" | 0/{N_STEPS} done, {full.rsplit(', ', 1)[1]}"
    assert short == f"... running: {sid} step 120/400{count_and_left}"
    # a step id is cut from its start: its end tells the cells and benchmarks apart
    assert len(cut) == 64 and cut.endswith(f"{sid[-12:]} step 120/400{count_and_left}")
    assert cut.startswith("... running: …")
    assert len(two) <= 76 and " step 120/400, …" in two and f"{other[-6:]} (0s) | " in two
    assert wide.getvalue() == f"[0/{N_STEPS}] start {sid}\n"


def test_terminal_display_shows_counts_and_fits_the_width(plan):
    plan.save()
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=70, color_system=None)
    summary = run_plan(plan, LocalExecutor(), console)
    assert summary.ok and len(summary.ran) == N_STEPS
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())
    frames = [line for line in re.split(r"[\r\n]+", text) if line.strip()]
    assert frames[-1].startswith("steps") and f"{N_STEPS}/{N_STEPS}" in frames[-1]
    assert frames[-1].rstrip().endswith("0s left")
    assert any(line.startswith("  stage2/") for line in frames)  # running steps' own rows
    assert max(len(line) for line in frames) <= 70
    assert not any(line.startswith("[") for line in frames)  # no log lines in a terminal
