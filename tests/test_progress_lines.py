"""What a run prints where the console is not a terminal (CI logs, `make run | tee`): one line
per step start and end with the count, a periodic line with the running steps' progress, and
no line wider than the console."""

from __future__ import annotations

import re

import _core_fakes as fakes
import pytest

from harness.plan.build import Options
from harness.plugins import load_plugins, reset_plugins
from harness.run.display import EVERY_ENV
from harness.run.orchestrate import run_command

# 2 sizes x 2 learning rates: 2 shared stage-1 steps, then per cell stage 2, generate,
# judge and score
N_STEPS = 2 + 4 * 4
EVENT = re.compile(r"^\[(\d+)/(\d+)\] (start|done|failed|skipped|reused) (.*)$")
RUNNING = re.compile(r"^\.\.\. running: (.+) \| (\d+)/(\d+) done, (\S+) elapsed, (\S+) left$")


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    reset_plugins(load_plugins(extra=[fakes]))
    registry = tmp_path / "registry.toml"
    registry.write_text(fakes.REGISTRY)
    config = tmp_path / "exp.toml"
    config.write_text(fakes.EXPERIMENT)
    monkeypatch.setenv("FAKE_LEDGER", str(tmp_path / "ledger.txt"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv(EVERY_ENV, "3600")
    yield tmp_path, registry, config
    reset_plugins(None)


def _run(tmp_path, registry, config, *matrix: str) -> int:
    opts = Options(
        matrix=["methods=fake", *(matrix or ["lr=1e-4,2e-4"])],
        config=config,
        registry=registry,
        out=tmp_path / "run",
    )
    return run_command(opts)


def _events(out: str) -> list[tuple[int, int, str, str]]:
    found = []
    for line in out.splitlines():
        match = EVENT.match(line)
        if match:
            found.append((int(match[1]), int(match[2]), match[3], match[4]))
    return found


def test_one_line_per_step_start_and_end_with_the_count(fake_env, capsys):
    tmp_path, registry, config = fake_env
    assert _run(tmp_path, registry, config) == 0
    events = _events(capsys.readouterr().out)
    starts = [e for e in events if e[2] == "start"]
    dones = [e for e in events if e[2] == "done"]
    assert len(starts) == len(dones) == N_STEPS
    assert len(events) == 2 * N_STEPS
    assert {e[1] for e in events} == {N_STEPS}
    # each end counts one more settled step; a start shows the count when it started
    assert [e[0] for e in dones] == list(range(1, N_STEPS + 1))
    assert all(re.fullmatch(r"[a-z0-9]+/\S+ \d+s", e[3]) for e in dones)
    assert {e[3] for e in starts} == {e[3].rsplit(" ", 1)[0] for e in dones}
    assert starts[0][:2] == (0, N_STEPS) and starts[0][3].startswith("stage1/fake-a")

    # a second run reuses every step: one line says so, nothing starts
    assert _run(tmp_path, registry, config) == 0
    again = _events(capsys.readouterr().out)
    assert again == [
        (N_STEPS, N_STEPS, "reused", f"{N_STEPS} finished steps from the store"),
    ]


def test_a_failed_step_and_the_steps_it_fails(fake_env, capsys, monkeypatch):
    tmp_path, registry, config = fake_env
    monkeypatch.setenv("FAKE_FAIL", "stage2/fake-b_fake_lr0.0002")
    assert _run(tmp_path, registry, config) == 1
    events = _events(capsys.readouterr().out)
    failed = [e for e in events if e[2] == "failed"]
    skipped = [e for e in events if e[2] == "skipped"]
    assert len(failed) == 1
    assert re.fullmatch(
        r"stage2/fake-b_fake_lr0.0002 \d+s: plugin 'fake' .* failed: RuntimeError: "
        r"injected failure in stage2/fake-b_fake_lr0.0002",
        failed[0][3],
    )
    # its generate, judge and score steps: each names the input that did not finish
    assert len(skipped) == 3
    assert skipped[0][3] == (
        "generate/fake-b_fake_lr0.0002/fakebench: "
        "its input stage2/fake-b_fake_lr0.0002 did not finish"
    )
    settled = [e[0] for e in events if e[2] != "start"]
    assert settled == list(range(1, N_STEPS + 1))


def test_periodic_line_with_the_running_steps_progress(fake_env, capsys, monkeypatch):
    tmp_path, registry, config = fake_env
    monkeypatch.setenv(EVERY_ENV, "0.1")
    monkeypatch.setenv("FAKE_CHECKPOINTS", "3")  # stage 2: 3 steps of 0.4 s, each reported
    monkeypatch.setenv("FAKE_STEP_S", "0.4")
    assert _run(tmp_path, registry, config, "sizes=fake-a", "lr=1e-4") == 0
    out = capsys.readouterr().out
    running = [RUNNING.match(line) for line in out.splitlines() if line.startswith("... ")]
    assert running and all(running), out
    steps = [m for m in running if re.fullmatch(r"stage2/fake-a_fake step [0-3]/3", m[1])]
    assert steps, out
    n_steps = 1 + 4  # one cell: its stage 1, stage 2, generate, judge, score
    assert all(int(m[3]) == n_steps and int(m[2]) == 1 for m in steps)  # stage 1 is done


def test_no_line_is_wider_than_the_console(fake_env, capsys, monkeypatch):
    tmp_path, registry, config = fake_env
    monkeypatch.setenv("COLUMNS", "50")
    monkeypatch.setenv(EVERY_ENV, "0.1")
    monkeypatch.setenv("FAKE_CHECKPOINTS", "2")
    monkeypatch.setenv("FAKE_STEP_S", "0.3")
    assert _run(tmp_path, registry, config) == 0
    lines = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith(("[", "... running"))
    ]
    assert len([line for line in lines if line.startswith("[")]) == 2 * N_STEPS
    assert any(line.startswith("... running") for line in lines)
    assert max(len(line) for line in lines) <= 50
    cut = [line for line in lines if line.endswith("…")]
    # judge/fake-a_fake_lr0.0001/fakebench/run0 and the like, and every running line
    assert len(cut) > 8
    assert all(len(line) == 50 for line in cut)
