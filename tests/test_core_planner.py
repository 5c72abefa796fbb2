"""The planner against the study's Table 4, memory refusals, the budget guard, calibration."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import _core_fakes as fakes
import pytest

from harness.plan.build import Options
from harness.plugins import load_plugins, reset_plugins
from harness.results import CellResult, RunResults, TrainRecord
from harness.run.orchestrate import run_command

TABLE4 = {
    ("7b", "full"): 1.3,
    ("13b", "lora"): 2.1,
    ("13b", "full"): 2.3,
    ("33b", "lora"): 4.79,
    ("33b", "full"): 5.80,
    ("65b", "lora"): 9.17,
    ("65b", "full"): 13.50,
}


def _harness(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_plan_matches_table4_within_15_percent(tmp_path):
    result = _harness(
        "plan",
        "--matrix",
        "sizes=7b,13b,33b,65b",
        "methods=full,lora",
        "rank=64",
        "--json",
        env={"HARNESS_CACHE": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    cells = json.loads(result.stdout)["cells"]
    checked = 0
    for cell in cells:
        key = (cell["axes"]["size"], cell["axes"]["method"])
        if key in TABLE4:
            estimate = cell["estimate"]["stage2_gpu_hours"]
            assert abs(estimate / TABLE4[key] - 1) < 0.15, (key, estimate)
            checked += 1
    assert checked == 7


def test_cell_that_cannot_fit_is_refused_before_anything(tmp_path):
    plan = _harness("plan", "--matrix", "sizes=65b", "methods=lora", "zero=2")
    assert "needs about 139 GB per GPU under ZeRO-2" in plan.stdout
    run = _harness(
        "run", "--matrix", "sizes=65b", "methods=lora", "zero=2", "--out", str(tmp_path / "run")
    )
    assert run.returncode == 2
    assert run.stderr.startswith("error: cell 65b_lora will not fit")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (
            ["sizes=33b", "methods=lora"],
            "cell 33b_lora trains the 33b model on a100-80g GPUs and this machine has none; "
            "nothing was started",
        ),
        (
            ["sizes=33b,65b", "methods=qlora"],
            "cell 65b_qlora: size '65b' has no public LLM checkpoint: set `llm` in a registry "
            "file; nothing was started",
        ),
    ],
)
def test_real_cells_that_cannot_train_here_are_refused_before_anything(
    tmp_path, monkeypatch, matrix, message
):
    import harness.train.settings as settings
    from harness.errors import UserError

    monkeypatch.setattr(settings, "cuda_devices", lambda: 0)
    with pytest.raises(UserError) as refused:
        run_command(Options(matrix=matrix, out=tmp_path / "run"))
    assert str(refused.value).startswith(message)
    assert not (tmp_path / "run").exists()


def test_gpu_cells_pass_the_refusal_under_slurm_or_with_a_gpu(tmp_path, monkeypatch):
    import harness.train.settings as settings
    from harness.cost.budget import refuse_untrainable_cells
    from harness.plan.build import build_plan
    from harness.plugins import get_plugins

    monkeypatch.setattr(settings, "cuda_devices", lambda: 0)
    slurm = build_plan(
        Options(matrix=["sizes=33b"], executor="slurm", out=tmp_path / "s"), get_plugins()
    )
    refuse_untrainable_cells(slurm)  # jobs run where the GPUs are
    monkeypatch.setattr(settings, "cuda_devices", lambda: 8)
    local = build_plan(Options(matrix=["sizes=33b"], out=tmp_path / "l"), get_plugins())
    refuse_untrainable_cells(local)


def test_budget_refuses_a_plan_over_it(tmp_path):
    run = _harness(
        "run",
        "--matrix",
        "sizes=33b",
        "methods=lora",
        "--budget-usd",
        "10",
        "--out",
        str(tmp_path / "run"),
    )
    assert run.returncode == 2
    plan = _harness("plan", "--matrix", "sizes=33b", "methods=lora", "--json")
    total = json.loads(plan.stdout)["total_estimate"]["total_usd"]
    assert run.stderr == (
        f"error: the plan's estimated cost ${total:,.2f} exceeds --budget-usd "
        "$10.00; nothing was started\n"
    )
    assert not (tmp_path / "run").exists()


def test_budget_stops_launching_when_measured_spend_reaches_it(tmp_path, monkeypatch):
    reset_plugins(load_plugins(extra=[fakes]))
    # a free judge, so that the plan's estimate (judging included) passes and GPU spend stops it
    free = fakes.REGISTRY.replace("_usd_per_mtok = 10.0", "_usd_per_mtok = 0.0")
    (tmp_path / "reg.toml").write_text(free.replace("_usd_per_mtok = 20.0", "_usd_per_mtok = 0.0"))
    (tmp_path / "exp.toml").write_text(fakes.EXPERIMENT)
    monkeypatch.setenv("FAKE_LEDGER", str(tmp_path / "ledger"))
    try:
        # each fake stage-1 step costs 0.25 GPU-h x $0.10: the budget allows one step
        opts = Options(
            config=tmp_path / "exp.toml",
            registry=tmp_path / "reg.toml",
            out=tmp_path / "run",
            budget_usd=0.02,
        )
        assert run_command(opts) == 1
    finally:
        reset_plugins(None)
    ledger = (tmp_path / "ledger").read_text().splitlines()
    # the estimate builds the judge requests (judge_requests lines); one step was trained
    assert [line for line in ledger if not line.startswith("judge_requests")] == ["stage1 fake-a"]


def test_calibrate_from_a_finished_run(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    record = TrainRecord(stage="stage2", method="lora", wall_s=3600.0, gpus=8, tokens=10_000_000)
    cell = CellResult(
        id="13b_lora", axes={}, spec_sha256="x", model={"params_b": 13.0}, train={"stage2": record}
    )
    run = tmp_path / "run"
    run.mkdir()
    RunResults(
        harness_version="0",
        created="now",
        experiment={},
        hardware={"peak_tflops_bf16": 312.0},
        cells=[cell],
    ).write(run / "results.json")
    out = _harness("calibrate", str(run), env={"HARNESS_CACHE": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr
    expected = 4 * 13e9 * 1e7 / (3600 * 8 * 312e12)
    assert f"lora: efficiency {expected:.3f}" in out.stdout
    from harness.cost.planner import efficiencies

    assert efficiencies()["lora"] == pytest.approx(expected)
    bad = _harness("calibrate", str(tmp_path))
    assert bad.returncode == 2 and "no results.json" in bad.stderr
