"""`harness plan` after `harness calibrate`: the study's Table 4 estimate beside the measured one.

A calibration from a finished run (real results.json, fitted by `calibrate`) makes the plan show
each cell at both efficiencies and what the measured throughput saves; methods the run did not
measure cost the same both ways, and without a calibration nothing extra is shown.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.cost.calibrate import calibrate
from harness.cost.planner import paper_efficiencies
from harness.results import CellResult, RunResults, TrainRecord

MATRIX = ["--matrix", "sizes=7b,13b", "--matrix", "methods=full,lora"]


def _plan(runner: CliRunner, tmp_path, *flags: str):
    out = ["--out", str(tmp_path / "run"), "--store", str(tmp_path / "store")]
    result = runner.invoke(app, ["plan", *flags, *MATRIX, *out])
    assert result.exit_code == 0, result.output
    return result.output


def _finished_lora_run(tmp_path, efficiency: float):
    """A run whose 13B LoRA stage 2 ran at `efficiency` on 8 A100s (312 TFLOPS)."""
    wall_s, gpus, params_b = 3600.0, 8, 13.0
    tokens = round(efficiency * wall_s * gpus * 312e12 / (4 * params_b * 1e9))
    record = TrainRecord(stage="stage2", method="lora", wall_s=wall_s, gpus=gpus, tokens=tokens)
    cell = CellResult(
        id="13b_lora",
        axes={},
        spec_sha256="x",
        model={"params_b": params_b},
        train={"stage2": record},
    )
    run = tmp_path / "measured"
    run.mkdir()
    RunResults(
        harness_version="0",
        created="now",
        experiment={},
        hardware={"peak_tflops_bf16": 312.0},
        cells=[cell],
    ).write(run / "results.json")
    return run


def test_plan_shows_table4_and_measured_costs_after_calibration(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    runner = CliRunner(env={"COLUMNS": "100"})
    before = json.loads(_plan(runner, tmp_path, "--json"))
    assert all("table4" not in cell["estimate"] for cell in before["cells"])
    assert "Table 4" not in _plan(runner, tmp_path)

    paper = paper_efficiencies()["lora"]
    fitted = calibrate([_finished_lora_run(tmp_path, 2 * paper)])
    assert fitted["lora"] == pytest.approx(2 * paper, rel=1e-6)

    after = json.loads(_plan(runner, tmp_path, "--json"))
    cells = {cell["id"]: cell["estimate"] for cell in after["cells"]}
    lora, full = cells["13b_lora"], cells["13b_full"]
    # twice the efficiency: half the stage-2 GPU-hours; stage 1 and full stay at Table 4's
    assert lora["table4"]["stage2_gpu_hours"] == pytest.approx(2 * lora["stage2_gpu_hours"])
    assert lora["table4"]["stage1_gpu_hours"] == pytest.approx(lora["stage1_gpu_hours"])
    assert full["table4"]["gpu_usd"] == pytest.approx(full["gpu_usd"])
    unchanged = {c["id"]: c["estimate"] for c in before["cells"]}
    assert lora["table4"]["gpu_usd"] == pytest.approx(unchanged["13b_lora"]["gpu_usd"])
    saved = sum(c["table4"]["gpu_usd"] - c["gpu_usd"] for c in cells.values())
    assert saved > 0
    total = after["total_estimate"]
    assert total["table4_gpu_usd"] - total["gpu_usd"] == pytest.approx(saved)

    shown = _plan(runner, tmp_path)
    assert "measured throughput against the study's Table 4" in shown
    lines = shown.splitlines()
    row = next(
        line for line in lines if line.split()[:1] == ["13b_lora"] and len(line.split()) == 6
    )
    t4_usd, usd, saved_usd = (float(x) for x in row.split()[3:])
    assert (t4_usd, usd) == (round(lora["table4"]["gpu_usd"], 2), round(lora["gpu_usd"], 2))
    assert saved_usd == pytest.approx(t4_usd - usd, abs=0.011)
    total_row = next(line for line in lines if line.split()[:1] == ["total"])
    assert float(total_row.split()[-1]) == pytest.approx(saved, abs=0.011)
