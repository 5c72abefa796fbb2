"""The real training loop and generation engine report their progress (step k/n, items k/n)
through the running step's progress file."""

from __future__ import annotations

import pytest
import torch
from _eval_fixtures import tiny_llm
from _train_fixtures import cell, open_world

from harness.eval import run_requests
from harness.protocols import GenerationRequest
from harness.support import step_progress

pytestmark = pytest.mark.slow


@pytest.fixture
def reports(tmp_path, monkeypatch):
    """Every report made, each also written to the step's file as usual."""
    monkeypatch.delenv("RANK", raising=False)
    made: list[tuple[int, int, str]] = []
    real = step_progress.report

    def spy(done: int, total: int, unit: str = "items") -> None:
        made.append((done, total, unit))
        real(done, total, unit)

    monkeypatch.setattr(step_progress, "report", spy)
    return made


def test_training_reports_each_optimizer_step(tmp_path, monkeypatch, reports):
    from harness.train import run_stage1

    torch.set_num_threads(1)
    world = open_world(tmp_path, monkeypatch)
    path = tmp_path / "stage1.progress.json"
    with step_progress.reporting_to(path):
        record = run_stage1(cell(world.mix, "full"), tmp_path / "stage1", lambda line: None)
        last = step_progress.read(path)
    steps = [r for r in reports if r[2] == "step"]
    assert steps == [(i, record.steps, "step") for i in range(record.steps + 1)]
    assert last is not None and last.label() == f"step {record.steps}/{record.steps}"


def test_generation_reports_items_done(tmp_path, reports):
    bundle = tiny_llm()
    requests = [
        GenerationRequest(id=f"q{i}", prompt="the red square " * (i + 1), max_new_tokens=3)
        for i in range(5)
    ]
    path = tmp_path / "generate.progress.json"
    with step_progress.reporting_to(path):
        run_requests(bundle, requests, batch_size=2)
        last = step_progress.read(path)
    assert reports == [(2, 5, "items"), (4, 5, "items"), (5, 5, "items")]
    assert last is not None and last.label() == "5/5"
