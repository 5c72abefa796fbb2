"""Executors: the slurm executor (through submitit's local cluster) gives the local results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import _core_fakes as fakes
import pytest
from harness_plugins.executors.slurm import SlurmExecutor

from harness.errors import UserError
from harness.plan.build import Options
from harness.plugins import load_plugins, reset_plugins
from harness.run.orchestrate import run_command
from harness.specs import ExecutorSpec

TESTS = Path(__file__).resolve().parent


def _dist(target: Path) -> None:
    dist = target / "harness_fakes-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: harness-fakes\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness]\nfakes = _core_fakes\n")


@pytest.mark.slow
def test_slurm_executor_through_submitit_local_matches_local(tmp_path, monkeypatch):
    _dist(tmp_path)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{TESTS}")  # submitit's jobs
    monkeypatch.syspath_prepend(str(tmp_path))  # the driver's workers (judge and score steps)
    reset_plugins(load_plugins(extra=[fakes]))
    (tmp_path / "reg.toml").write_text(fakes.REGISTRY)
    config = tmp_path / "exp.toml"
    config.write_text(
        fakes.EXPERIMENT + '\nexecutor = { name = "slurm", max_parallel = 4, '
        'options = { cluster = "local" } }\n'
    )
    local_config = tmp_path / "local.toml"
    local_config.write_text(fakes.EXPERIMENT)
    try:
        common = {"matrix": ["lr=1e-4,2e-4"], "registry": tmp_path / "reg.toml"}
        assert run_command(Options(config=config, out=tmp_path / "slurm", **common)) == 0
        assert run_command(Options(config=local_config, out=tmp_path / "local", **common)) == 0
    finally:
        reset_plugins(None)
    slurm = json.loads((tmp_path / "slurm" / "results.json").read_text())
    local = json.loads((tmp_path / "local" / "results.json").read_text())
    assert [c["benchmarks"] for c in slurm["cells"]] == [c["benchmarks"] for c in local["cells"]]
    manifests = [
        json.loads(p.read_text())
        for p in (tmp_path / "slurm" / "store" / "steps").glob("*/manifest.json")
    ]
    assert len(manifests) == 2 + 4 * 4  # shared stage-1 steps + 4 steps per cell
    # training and generation went out as jobs; judge and score ran in the driver's workers
    jobs = [m["cluster_job"] for m in manifests if m["kind"] not in ("judge", "score")]
    assert len(jobs) == 2 + 2 * 4
    assert all(j and j["job_id"] and j["executor"] == "local" for j in jobs)
    assert all(Path(j["log"]).parent.parent == tmp_path / "slurm" / "slurm" for j in jobs)
    here = [m for m in manifests if m["kind"] in ("judge", "score")]
    assert len(here) == 2 * 4 and all(m["cluster_job"] is None for m in here)
    assert os.getpid() not in {m["pid"] for m in here}  # workers, not the walk itself


def test_job_shape_and_sbatch_script(tmp_path):
    ex = SlurmExecutor(
        ExecutorSpec(name="slurm", partition="a100", account="lab", time_limit_min=600)
    )
    params = ex.parameters({"kind": "stage2", "nodes": 4, "gpus_per_node": 8})
    assert params == {
        "timeout_min": 600,
        "nodes": 4,
        "name": "harness-stage2",
        "gpus_per_node": 8,
        "tasks_per_node": 8,  # several nodes: one Slurm task per rank
        "slurm_partition": "a100",
        "slurm_account": "lab",
    }
    assert "gpus_per_node" not in ex.parameters({"kind": "judge", "nodes": 1, "gpus_per_node": 1})
    script = ex.sbatch_script({"kind": "stage2", "nodes": 4, "gpus_per_node": 8}, tmp_path)
    for line in (
        "#SBATCH --partition=a100",
        "#SBATCH --account=lab",
        "#SBATCH --nodes=4",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --ntasks-per-node=8",
        "#SBATCH --time=600",
    ):
        assert line in script


def test_preempted_job_is_requeued_as_itself():
    from harness.run.jobs import StepJob

    job = StepJob("/runs/x", "stage2/cell")
    again = job.checkpoint()
    assert again.function == job


def test_cluster_without_default_partition_is_refused_before_anything(tmp_path, monkeypatch):
    sinfo = tmp_path / "sinfo"
    sinfo.write_text("#!/bin/sh\necho gpu\necho cpu\n")
    sinfo.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(UserError, match="no default partition"):
        SlurmExecutor(ExecutorSpec(name="slurm"))
    result = subprocess.run(
        [sys.executable, "-m", "harness", "plan", "--executor", "slurm", "--matrix", "sizes=33b"],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no default partition: set executor.partition" in result.stderr
    sinfo.write_text("#!/bin/sh\necho gpu*\necho cpu\n")
    SlurmExecutor(ExecutorSpec(name="slurm"))  # a default partition: accepted


def test_local_executor_with_worker_processes_matches_serial(tmp_path, monkeypatch):
    _dist(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers start from this sys.path
    reset_plugins(None)  # found through the installed entry point, as in the workers
    (tmp_path / "reg.toml").write_text(fakes.REGISTRY)
    (tmp_path / "exp.toml").write_text(fakes.EXPERIMENT)
    try:
        common = {
            "matrix": ["lr=1e-4,2e-4"],
            "registry": tmp_path / "reg.toml",
            "config": tmp_path / "exp.toml",
        }
        assert run_command(Options(out=tmp_path / "pool", max_parallel=2, **common)) == 0
        assert run_command(Options(out=tmp_path / "serial", **common)) == 0
    finally:
        reset_plugins(None)
    pool = json.loads((tmp_path / "pool" / "results.json").read_text())
    serial = json.loads((tmp_path / "serial" / "results.json").read_text())
    assert [c["benchmarks"] for c in pool["cells"]] == [c["benchmarks"] for c in serial["cells"]]
    starts = {}
    for path in (tmp_path / "pool" / "store" / "steps").glob("*/manifest.json"):
        body = json.loads(path.read_text())
        starts[body["step"]] = (body["kind"], body["start"], body["end"], body["pid"])
    last_training_end = max(e for k, _, e, _ in starts.values() if k in ("stage1", "stage2"))
    first_eval_start = min(s for k, s, _, _ in starts.values() if k == "generate")
    assert first_eval_start >= last_training_end  # every model trained before any evaluation
    pids = {pid for *_, pid in starts.values()}
    assert os.getpid() not in pids and len(pids) <= 2  # steps ran on the (reused) workers


@pytest.mark.slow
def test_stop_cancels_the_jobs_in_flight_and_leaves_finished_ones(tmp_path):
    """Through submitit's local cluster (the real cluster's scancel: tests/test_slurm.py)."""
    import functools
    import time

    executor = SlurmExecutor(ExecutorSpec(name="slurm", options={"cluster": "local"}))
    quick = functools.partial(time.sleep, 0)
    slow = functools.partial(time.sleep, 120)
    for job in (quick, slow):
        job.run_dir = str(tmp_path)  # where the executor keeps its job folders
    finished, running = executor.submit_batch([(quick, {"kind": "score"}), (slow, {})])
    finished.result()
    deadline = time.monotonic() + 60
    while running.state != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    executor.stop()
    deadline = time.monotonic() + 30
    while running._process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running._process.poll() is not None  # ended, not left to sleep out its 120 s
    assert finished.done() and finished.result() is None
    assert executor.submitted == []
    executor.stop()  # nothing left: a second stop does nothing
