"""A run never makes a run folder worse, and never shares it: earlier cells keep their scores when
a new cell fails, bad input writes nothing, a run folder is locked whatever `--store` is, a step's
work folder is locked against a second process, and a judge step that raises is not stored."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import _core_fakes as fakes
import pytest

from harness.errors import UserError
from harness.plan.build import Options
from harness.plan.plan_file import Plan
from harness.plugins import load_plugins, reset_plugins
from harness.run.orchestrate import run_command
from harness.support import locks

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    reset_plugins(load_plugins(extra=[fakes]))
    (tmp_path / "registry.toml").write_text(fakes.REGISTRY)
    (tmp_path / "exp.toml").write_text(fakes.EXPERIMENT)
    ledger = tmp_path / "ledger.txt"
    monkeypatch.setenv("FAKE_LEDGER", str(ledger))

    def opts(*matrix: str, **kw) -> Options:
        kw.setdefault("out", tmp_path / "run")
        return Options(
            matrix=list(matrix),
            config=tmp_path / "exp.toml",
            registry=tmp_path / "registry.toml",
            **kw,
        )

    yield tmp_path, opts, ledger
    reset_plugins(None)


def _scores(run: Path) -> dict[str, dict]:
    results = json.loads((run / "results.json").read_text())
    return {c["id"]: c["benchmarks"] for c in results["cells"]}


def test_a_failed_new_cell_keeps_the_earlier_cells_scores(fake_env, monkeypatch):
    tmp_path, opts, _ = fake_env
    assert run_command(opts("sizes=fake-a", "lr=1e-4,2e-4")) == 0
    before = _scores(tmp_path / "run")
    assert all(b["fakebench"]["metrics"]["overall"] >= 0 for b in before.values())

    monkeypatch.setenv("FAKE_FAIL", "stage2/")  # the new cell fails at stage 2
    assert run_command(opts("sizes=fake-a", "lr=3e-4")) == 1
    after = _scores(tmp_path / "run")
    assert after["fake-a_fake"] == {}  # the new cell: no scores, its failure recorded
    for cid, benchmarks in before.items():
        assert after[cid] == benchmarks


def test_a_failed_new_setting_of_the_same_cell_keeps_its_earlier_scores(
    fake_env, monkeypatch, capsys
):
    tmp_path, opts, _ = fake_env
    assert run_command(opts("sizes=fake-a")) == 0
    before = json.loads((tmp_path / "run" / "results.json").read_text())["cells"]
    samples = tmp_path / "run" / "samples" / "fake-a_fake" / "fakebench.jsonl"
    samples_before = samples.read_bytes()

    with monkeypatch.context() as patch:  # same cell id, another lr: its stage 2 fails
        patch.setenv("FAKE_FAIL", "stage2/")
        assert run_command(opts("sizes=fake-a", "lr=5e-4")) == 1
    assert (
        "results.json keeps the earlier scores of fake-a_fake: this run did not finish it"
        in capsys.readouterr().out
    )
    assert json.loads((tmp_path / "run" / "results.json").read_text())["cells"] == before
    assert samples.read_bytes() == samples_before

    assert run_command(opts("sizes=fake-a", "lr=5e-4")) == 0  # finished: the new one counts
    after = json.loads((tmp_path / "run" / "results.json").read_text())["cells"]
    assert [c["id"] for c in after] == ["fake-a_fake"]
    assert after[0]["spec_sha256"] != before[0]["spec_sha256"]
    assert after[0]["benchmarks"]["fakebench"]["n_items"] == 4


def test_bad_input_leaves_plan_and_results_untouched(fake_env):
    tmp_path, opts, _ = fake_env
    assert run_command(opts("sizes=fake-a")) == 0
    run = tmp_path / "run"
    before = {name: (run / name).read_bytes() for name in ("plan.json", "results.json")}
    with pytest.raises(UserError):
        run_command(opts("sizes=fake-z"))
    assert {name: (run / name).read_bytes() for name in before} == before


def test_a_judge_step_that_raises_is_not_stored(fake_env, monkeypatch):
    tmp_path, opts, ledger = fake_env

    def incomplete(self, requests):
        raise RuntimeError(f"judging incomplete: {len(requests)} of {len(requests)} failed")

    with monkeypatch.context() as patch:
        patch.setattr(fakes.FakeJudge, "judge", incomplete)
        assert run_command(opts("sizes=fake-a")) == 1
    plan = Plan.load(tmp_path / "run")
    stored = {s.kind for s in plan.steps if plan.store.done(s.key)}
    assert stored == {"stage1", "stage2", "generate"}
    assert _scores(tmp_path / "run") == {"fake-a_fake": {}}

    ledger.write_text("")
    assert run_command(opts("sizes=fake-a")) == 0
    assert [line for line in ledger.read_text().splitlines() if line.startswith("judge ")] == [
        "judge 4"
    ]
    assert _scores(tmp_path / "run")["fake-a_fake"]["fakebench"]["metrics"]["overall"] >= 0


def test_a_step_whose_work_folder_is_held_is_refused_not_run_twice(fake_env):
    tmp_path, opts, ledger = fake_env
    plan_opts = opts("sizes=fake-a")
    from harness.plan.build import build_plan
    from harness.plugins import get_plugins

    plan = build_plan(plan_opts, get_plugins())
    stage2 = next(s for s in plan.steps if s.kind == "stage2")
    handle = locks.acquire(plan.store.step_lock_path(stage2.key), "held")
    handle.write("pid 4242 on testhost")
    handle.flush()
    try:
        assert run_command(plan_opts) == 1
    finally:
        locks.release(handle)
    assert "stage2 " not in ledger.read_text()  # never trained beside the holder
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    failed = results["cells"][0]["failed_steps"][0]
    assert failed["error"] == (
        f"step {stage2.id} is being run by another process (pid 4242 on testhost)"
    )
    assert run_command(plan_opts) == 0  # once the holder is gone, the step runs


def test_two_runs_on_one_out_with_different_stores_are_refused(fake_env):
    tmp_path, opts, _ = fake_env
    dist = tmp_path / "harness_fakes-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: harness-fakes\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness]\nfakes = _core_fakes\n")
    ledger = tmp_path / "first-ledger"
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{TESTS}",
        "FAKE_LEDGER": str(ledger),
        "FAKE_SLEEP": "3",
    }
    first = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--config", str(tmp_path / "exp.toml")]
        + ["--registry", str(tmp_path / "registry.toml"), "--out", str(tmp_path / "run")]
        + ["--store", str(tmp_path / "store-1"), "--matrix", "sizes=fake-a"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "run" / "plan.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    plan_before = (tmp_path / "run" / "plan.json").read_bytes()
    with pytest.raises(UserError) as refused:
        run_command(opts("sizes=fake-a", store=tmp_path / "store-2"))
    assert str(refused.value) == (
        f"run folder {tmp_path / 'run'} is locked by another run (pid {first.pid} on "
        f"{socket.gethostname()})"
    )
    assert (tmp_path / "run" / "plan.json").read_bytes() == plan_before
    assert not (tmp_path / "store-2").exists()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert set(_scores(tmp_path / "run")["fake-a_fake"]) == {"fakebench"}
    assert len(list((tmp_path / "store-1" / "steps").iterdir())) == 5


def test_a_submitted_step_refuses_a_plan_that_changed_under_it(fake_env):
    from harness.run.jobs import StepJob

    tmp_path, opts, _ = fake_env
    assert run_command(opts("sizes=fake-a")) == 0
    plan = Plan.load(tmp_path / "run")
    step = next(s for s in plan.steps if s.kind == "stage2")
    same = StepJob(str(tmp_path / "run"), step.id, step.key, str(plan.store_root))
    assert same()["key"] == step.key  # finished: its manifest
    moved = StepJob(str(tmp_path / "run"), step.id, step.key, str(tmp_path / "other-store"))
    with pytest.raises(UserError, match="plan.json changed since this step was submitted"):
        moved()
