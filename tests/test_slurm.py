"""`harness run --executor slurm` against a real Slurm cluster on loopback (tests/_slurm.py).

Tiny cells of a quick size (its foundation builds in seconds) run through sbatch, job arrays,
`scontrol requeue`, `scancel` and an interrupted run on a node without GPUs, on one declaring
two `gres/gpu`, and across two nodes (two slurmd on this machine).
The cluster keeps no accounting database, as many small clusters: job states come from squeue.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _quick import QUICK_REGISTRY, QUICK_TRAINING
from _slurm import Cluster, missing_names, unavailable
from harness_plugins.executors.slurm import SlurmExecutor
from harness_plugins.executors.slurm_state import parse_squeue

from harness.errors import UserError
from harness.specs import ExecutorSpec

REGISTRY = (
    QUICK_REGISTRY
    + """
[hardware.gpu2]   # a node with two GPUs (the test cluster's are /dev/null and /dev/zero)
gpus_per_node = 2
gpu_memory_gb = 80
usd_per_node_hour = 1.0
"""
)

EXPERIMENT = (
    """
sizes = ["quick"]
methods = ["lora"]
benchmarks = ["mmlu"]
judge = { name = "reference" }
eval = { batch_size = 32, max_new_tokens = 8 }
executor = { name = "slurm", time_limit_min = 20 }
"""
    + QUICK_TRAINING
)


# --- without a cluster: what the executor asks Slurm for, and how it reads squeue ---------------


def test_cpu_hardware_asks_slurm_for_no_gpus():
    ex = SlurmExecutor(ExecutorSpec(name="slurm", partition="debug"))
    stage2 = {"kind": "stage2", "nodes": 1, "gpus_per_node": 1}
    assert "gpus_per_node" not in ex.parameters({**stage2, "hardware": "cpu"})
    assert "gpus_per_node" not in ex.parameters({**stage2, "hardware": "x", "accelerator": "cpu"})
    gpu = ex.parameters({**stage2, "gpus_per_node": 8, "hardware": "a100-80g"})
    assert gpu["gpus_per_node"] == 8 and "tasks_per_node" not in gpu  # the launcher's ranks
    # stage 1 trains in one process on at most one GPU, whatever the cell's nodes
    stage1 = ex.parameters({**stage2, "kind": "stage1", "nodes": 4, "gpus_per_node": 8})
    assert (stage1["nodes"], stage1["gpus_per_node"], "tasks_per_node" in stage1) == (1, 1, False)
    script = ex.sbatch_script({**stage2, "hardware": "cpu"}, Path("/runs/r/slurm"))
    assert "--gpus-per-node" not in script and "#SBATCH --partition=debug" in script
    # two CPU ranks: stage 2 is one Slurm task per rank; stage 1 trains in one process
    ranks = {**stage2, "gpus_per_node": 2, "hardware": "cpu-2", "accelerator": "cpu"}
    assert ex.parameters(ranks)["tasks_per_node"] == 2
    assert "#SBATCH --ntasks-per-node=2" in ex.sbatch_script(ranks, Path("/runs/r/slurm"))
    assert "tasks_per_node" not in ex.parameters({**ranks, "kind": "stage1"})
    local = SlurmExecutor(ExecutorSpec(name="slurm", options={"cluster": "local"}))
    assert "tasks_per_node" not in local.parameters(ranks)  # the launcher starts them there


def test_judge_and_score_steps_run_in_the_driver_unless_the_judge_runs_a_model(tmp_path):
    ex = SlurmExecutor(ExecutorSpec(name="slurm", partition="debug"))
    kinds = ("stage1", "stage2", "generate", "judge", "score")
    assert [ex.runs_here({"kind": k}) for k in kinds] == [False, False, False, True, True]
    # a judge that runs a model (the hf judge) goes to the cluster, with one GPU
    hf = {"kind": "judge", "judge_runs_model": True, "gpus_per_node": 8, "hardware": "a100-80g"}
    assert not ex.runs_here(hf) and ex.parameters(hf)["gpus_per_node"] == 1
    assert "gpus_per_node" not in ex.parameters({"kind": "judge", "gpus_per_node": 8})
    everything = SlurmExecutor(ExecutorSpec(name="slurm", options={"run_here": []}))
    assert not any(everything.runs_here({"kind": k}) for k in kinds)
    with pytest.raises(UserError, match="unknown step kind.s. scoring"):
        SlurmExecutor(ExecutorSpec(name="slurm", options={"run_here": ["scoring"]}))
    # from the command line: one line, exit 2
    (tmp_path / "exp.toml").write_text(
        'sizes = ["tiny-1m"]\nexecutor = { name = "slurm", partition = "debug", '
        'options = { run_here = ["scoring"] } }\n'
    )
    cmd = [sys.executable, "-m", "harness", "plan", "--config", str(tmp_path / "exp.toml")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "executor.options.run_here: unknown step kind(s) scoring "
            "(one of stage1, stage2, generate, judge, score)"
        )
    )


def test_squeue_lines_become_job_states():
    text = "12_0|RUNNING|vm\n12_1|CANCELLED|vm\n13|CONFIGURING|\n14|COMPLETED|vm\n"
    states = {k: v["State"] for k, v in parse_squeue(text).items()}
    assert states == {"12_0": "RUNNING", "12_1": "CANCELLED", "13": "PENDING", "14": "COMPLETED"}


def test_jobs_squeue_no_longer_lists_have_ended_and_a_failing_squeue_warns_once(caplog):
    import subprocess as sp

    from harness_plugins.executors.slurm_state import SqueueWatcher

    watcher = SqueueWatcher()
    for job_id in ("12_0", "12_1", "13", "14"):
        watcher.register_job(job_id)
    command = watcher._make_command()
    assert command[-2:] == ["-j", "12,13,14"] and "sacct" not in command
    watcher._read(sp.CompletedProcess(command, 0, "12_0|RUNNING|vm\n14|FAILED|vm\n", ""))
    states = {j: watcher.get_state(j, mode="cache") for j in ("12_0", "12_1", "13", "14")}
    assert states == {"12_0": "RUNNING", "12_1": "ENDED", "13": "ENDED", "14": "FAILED"}
    assert not watcher.is_done("12_0", mode="cache") and watcher.is_done("12_1", mode="cache")

    down = sp.CompletedProcess(command, 1, "", "slurm_load_jobs error: Unable to contact slurm")
    with caplog.at_level("WARNING", logger="harness.slurm"):
        watcher._read(down)
        watcher._read(down)
    assert len(caplog.records) == 1 and "Unable to contact" in caplog.text
    assert watcher.get_state("12_0", mode="cache") == "RUNNING"  # unchanged, not ended
    gone = sp.CompletedProcess(command, 1, "", "slurm_load_jobs error: Invalid job id specified")
    watcher._read(gone)
    assert watcher.get_state("12_0", mode="cache") == "ENDED"


def test_a_step_that_raises_in_its_job_fails_with_what_it_raised(tmp_path):
    """Not `slurm job 3 PENDING without a result` (what a stale state said before): the last
    line of the job's traceback, read through submitit's own failed-job error (a local job)."""
    import functools

    import submitit
    from harness_plugins.executors.slurm_state import (
        ClusterJobError,
        SlurmStepHandle,
        SqueueWatcher,
        raised_in_job,
    )

    job = submitit.AutoExecutor(folder=tmp_path / "%j", cluster="local").submit(
        functools.partial(int, "twelve")
    )
    job.wait()
    handle = SlurmStepHandle(job, SqueueWatcher())
    expected = r"slurm job \S+: ValueError: invalid literal for int\(\) with base 10: 'twelve' \("
    with pytest.raises(ClusterJobError, match=expected):
        handle.result()
    # the harness's own errors read as a local run shows them: their message alone
    trace = (
        "Job (task=0) failed during processing with trace:\n" + "-" * 22 + "\n"
        "Traceback (most recent call last):\n  File ...\n"
        "harness.errors.UserError: step stage2/x is being run by another process (pid 7 on n1)\n"
        + "-" * 22
        + "\nYou can check full logs with ..."
    )
    assert raised_in_job(trace) == "step stage2/x is being run by another process (pid 7 on n1)"


def test_a_step_lock_names_the_slurm_job_holding_it(monkeypatch):
    """A rerun finds a step's earlier job from its lock (the real cluster: the orphaned test)."""
    from harness.support.locks import holder_line, slurm_job_id, slurm_job_of

    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    assert slurm_job_of(holder_line()) is None and "slurm" not in holder_line()
    monkeypatch.setenv("SLURM_JOB_ID", "57")
    assert slurm_job_of(holder_line()) == "57"
    array = {"SLURM_JOB_ID": "58", "SLURM_ARRAY_JOB_ID": "12", "SLURM_ARRAY_TASK_ID": "1"}
    assert slurm_job_id(array) == "12_1"
    assert slurm_job_of("pid 7 on node3 (slurm job 12_1)") == "12_1"
    assert slurm_job_of("pid 7 on node3") is None


# --- the real cluster ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    running = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SLURM_CONF", running.env["SLURM_CONF"])
            yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The registry and experiment files, and one foundation cache for every run."""
    root = tmp_path_factory.mktemp("slurm-project")
    (root / "reg.toml").write_text(REGISTRY)
    (root / "exp.toml").write_text(EXPERIMENT)
    (root / "train.toml").write_text(EXPERIMENT.replace('["mmlu"]', "[]"))  # both stages only
    return root


def harness(project: Path, *args: str, wait: bool = True, out: str = "run", exp: str = "exp"):
    cmd = [sys.executable, "-m", "harness", *args, "--config", str(project / f"{exp}.toml")]
    cmd += ["--registry", str(project / "reg.toml")]
    if args[0] == "run":  # one store for the module's runs: stage 1 is trained once
        cmd += ["--out", str(project / out), "--store", str(project / "store")]
    env = {**os.environ, "HARNESS_CACHE": str(project / "cache"), "PYTHONUNBUFFERED": "1"}
    if not wait:
        log = open(project / f"{out}.out", "w")  # noqa: SIM115 - the child writes it
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)


def manifests(run: Path) -> dict[str, dict]:
    """The manifests of the run's finished steps, by step id."""
    from harness.plan.plan_file import Plan

    plan = Plan.load(run)
    return {s.id: plan.store.manifest(s.key) for s in plan.steps if plan.store.done(s.key)}


def submissions(run: Path) -> dict[str, str]:
    """The sbatch scripts submitit wrote, by job name (harness-stage2, ...)."""
    out: dict[str, str] = {}
    for path in (run / "slurm").rglob("*_submission.sh"):
        text = path.read_text()
        name = re.search(r"--job-name=(\S+)", text).group(1)
        out.setdefault(name, text)
    return out


def _stage2_tasks(cluster: Cluster) -> dict[str, str]:
    done = cluster.client(["squeue", "-h", "-r", "-n", "harness-stage2", "-o", "%i|%T|%N"])
    return {k: v["State"] for k, v in parse_squeue(done.stdout).items()}


def _step_of(run: Path, job_id: str) -> str:
    """The step a submitted job runs, read from the pickle submitit wrote for it."""
    from submitit.core.utils import pickle_load

    (path,) = (run / "slurm").rglob(f"{job_id}_submitted.pkl")
    return pickle_load(path).function.step_id


def _wait_for(predicate, what: str, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _requeue_one_cancel_other(cluster: Cluster, run: Path) -> tuple[str, str]:
    """Once both stage-2 array tasks run and one has a checkpoint: requeue it, cancel the other.
    Returns (requeued, cancelled) job ids."""
    from harness.plan.plan_file import Plan

    tasks = _wait_for(
        lambda: (t := _stage2_tasks(cluster)) and set(t.values()) == {"RUNNING"} and t,
        "both stage-2 tasks running",
    )
    requeued, cancelled = sorted(tasks)
    plan = Plan.load(run)
    work = plan.store.work_dir(plan.step(_step_of(run, requeued)).key) / "checkpoints"
    _wait_for(lambda: any(work.glob("checkpoint-*/harness_meter.json")), "a checkpoint")
    assert _stage2_tasks(cluster).get(requeued) == "RUNNING", "stage 2 ended too soon"
    assert cluster.client(["scontrol", "requeue", requeued]).returncode == 0
    assert cluster.client(["scancel", cancelled]).returncode == 0
    # Slurm holds a requeued batch job for two minutes (its BeginTime): start it now
    _wait_for(lambda: _stage2_tasks(cluster).get(requeued) == "PENDING", "the requeue")
    release = ["scontrol", "update", f"JobId={requeued}", "StartTime=now"]
    assert cluster.client(release).returncode == 0
    return requeued, cancelled


@pytest.mark.slurm
@pytest.mark.slow
def test_cpu_cluster_runs_the_matrix_through_requeue_and_scancel(cluster, project):
    from harness.plan.plan_file import Plan

    cluster.start(gpus=0)
    run = project / "cpu"
    matrix = ("--matrix", "lr=2e-3,1e-3", "steps=150")
    proc = harness(project, "run", *matrix, wait=False, out="cpu")
    try:
        requeued, cancelled = _requeue_one_cancel_other(cluster, run)
        finished = manifests(run)  # stage 1, finished before the requeue
        proc.wait(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = (project / "cpu.out").read_text()
    assert proc.returncode == 1, output[-3000:]
    # no accounting database here: states came from squeue, without one sacct warning
    assert "sacct" not in output and "Bypassing" not in output
    # the two stage-2 steps, ready together with one shape, went out as one array
    array = requeued.split("_")[0]
    assert (requeued, cancelled) == (f"{array}_0", f"{array}_1")
    scripts = submissions(run)
    assert "#SBATCH --array=0-1%2" in scripts["harness-stage2"]
    for name, text in scripts.items():  # cpu hardware: no GPU asked for, anywhere
        assert "gpus" not in text and "gres" not in text, name

    # the cancelled job fails its step, with the Slurm state, and only what depends on it
    keep_step, cancel_step = _step_of(run, requeued), _step_of(run, cancelled)
    assert re.search(rf"failed {re.escape(cancel_step)}: .*slurm job {cancelled} CANCELLED", output)
    steps = manifests(run)
    cell, lost = keep_step.split("/", 1)[1], cancel_step.split("/", 1)[1]
    assert {f"generate/{cell}/mmlu", f"score/{cell}/mmlu"} <= set(steps)
    assert not {cancel_step, f"generate/{lost}/mmlu", f"score/{lost}/mmlu"} & set(steps)
    results = json.loads((run / "results.json").read_text())
    failed = {c["id"]: c["failed_steps"] for c in results["cells"]}
    assert failed[cell] == [] and failed[lost][0]["step"] == cancel_step

    # the requeued job ran again under its own id and resumed from its last checkpoint
    log = (run / "logs" / (keep_step.replace("/", "__") + ".log")).read_text()
    assert log.count(f"start {keep_step}") == 2, log
    assert re.search(r"resuming from .*checkpoint-\d+", log), log
    assert steps[keep_step]["cluster_job"]["job_id"] == requeued
    plan = Plan.load(run)
    record = plan.store.step_dir(plan.step(keep_step).key) / "record.json"
    assert json.loads(record.read_text())["steps"] == 150
    assert [s.split("/")[0] for s in finished] == ["stage1"]
    assert all(steps[s] == m for s, m in finished.items())  # finished: not run again

    # the same command finishes the matrix: only the cancelled cell's steps run
    again = harness(project, "run", *matrix, out="cpu")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "steps: 3 ran, 4 reused, 0 failed, 0 skipped" in again.stdout
    assert "sacct" not in again.stdout + again.stderr
    after = manifests(run)
    assert len(after) == 1 + 2 * 3  # the shared stage 1; stage 2, generate, score per cell
    assert all(after[s]["start"] == m["start"] for s, m in steps.items())
    # scoring ran in the driver's workers (executor.options.run_here); the rest as Slurm jobs
    jobs = [m["cluster_job"] for s, m in after.items() if not s.startswith("score/")]
    assert all(j and j["executor"] == "slurm" and j["job_id"] for j in jobs), jobs
    assert len({j["job_id"] for j in jobs}) == len(jobs) == 1 + 2 * 2
    assert all(m["cluster_job"] is None for s, m in after.items() if s.startswith("score/"))


def _jobs_of(run: Path) -> set[str]:
    """The ids of the jobs a run submitted (submitit keeps one pickle per job)."""
    return {p.name.removesuffix("_submitted.pkl") for p in (run / "slurm").rglob("*_submitted.pkl")}


def _processes_of(run: Path) -> list[str]:
    """The command lines of processes still running one of the run's jobs."""
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return [line for line in ps.stdout.splitlines() if str(run / "slurm") in line]


def _running_stage2(cluster: Cluster, run: Path) -> str | None:
    """A stage-2 job of this run that Slurm runs now, or None."""
    ours = _jobs_of(run)
    tasks = _stage2_tasks(cluster)
    return next((j for j, state in tasks.items() if j in ours and state == "RUNNING"), None)


@pytest.mark.slurm
@pytest.mark.slow
def test_an_interrupted_run_cancels_its_jobs_and_the_rerun_resumes(cluster, project):
    from harness.plan.plan_file import Plan

    cluster.start(gpus=0)
    run = project / "interrupted"
    matrix = ("--matrix", "steps=120")
    proc = harness(project, "run", *matrix, wait=False, out="interrupted")
    try:
        job = _wait_for(lambda: _running_stage2(cluster, run), "stage 2 running")
        step = _step_of(run, job)
        plan = Plan.load(run)
        work = plan.store.work_dir(plan.step(step).key) / "checkpoints"
        _wait_for(lambda: any(work.glob("checkpoint-*/harness_meter.json")), "a checkpoint")
        assert _stage2_tasks(cluster).get(job) == "RUNNING", "stage 2 ended too soon"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = (project / "interrupted.out").read_text()
    assert proc.returncode == 130, output[-3000:]
    # the job in flight is cancelled, not left to spend its node's hours for nobody
    assert f"cancelled 1 Slurm job(s) in flight: {job}" in output, output[-3000:]
    _wait_for(lambda: _stage2_tasks(cluster).get(job, "CANCELLED") == "CANCELLED", "scancel", 30)
    _wait_for(lambda: not _processes_of(run), "the job's processes to end", timeout=30)
    assert step not in manifests(run)

    # the same command resumes stage 2 from its last checkpoint and finishes the cell
    again = harness(project, "run", *matrix, out="interrupted")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "steps: 3 ran, 1 reused, 0 failed, 0 skipped" in again.stdout
    log = (run / "logs" / (step.replace("/", "__") + ".log")).read_text()
    assert log.count(f"start {step}") == 2, log
    assert re.search(r"resuming from .*checkpoint-\d+", log), log
    record = Plan.load(run).store.step_dir(plan.step(step).key) / "record.json"
    assert json.loads(record.read_text())["steps"] == 120


@pytest.mark.slurm
@pytest.mark.slow
def test_a_rerun_after_the_driver_died_waits_for_the_job_still_running_its_step(cluster, project):
    cluster.start(gpus=0)
    run = project / "orphaned"
    matrix = ("--matrix", "steps=90")
    proc = harness(project, "run", *matrix, wait=False, out="orphaned")
    try:
        job = _wait_for(lambda: _running_stage2(cluster, run), "stage 2 running")
    finally:
        proc.kill()  # SIGKILL, as a lost login node: nothing cancels the job
        proc.wait(timeout=60)
    step = _step_of(run, job)
    assert _stage2_tasks(cluster).get(job) == "RUNNING"  # it runs on, its driver gone

    again = harness(project, "run", *matrix, out="orphaned")
    output = again.stdout + again.stderr
    assert again.returncode == 0, output[-3000:]
    assert f"{step}: slurm job {job} of an earlier run is still running it" in output
    # the step ran once, in the earlier job; the rerun submitted no second job for it
    assert [j for j in _jobs_of(run) if _step_of(run, j) == step] == [job]
    steps = manifests(run)
    assert steps[step]["cluster_job"]["job_id"] == job
    log = (run / "logs" / (step.replace("/", "__") + ".log")).read_text()
    assert log.count(f"start {step}") == 1, log
    assert "steps: 3 ran, 1 reused, 0 failed, 0 skipped" in again.stdout


@pytest.mark.slurm
@pytest.mark.slow
def test_a_hung_up_driver_leaves_its_jobs_running(cluster, project):
    """SIGHUP (the driver's ssh connection dropped): its jobs are not cancelled, unlike Ctrl-C;
    the same command waits for them (the orphaned-driver test above)."""
    cluster.start(gpus=0)
    run = project / "hungup"
    proc = harness(project, "run", "--matrix", "steps=75", wait=False, out="hungup")
    try:
        job = _wait_for(lambda: _running_stage2(cluster, run), "stage 2 running")
        proc.send_signal(signal.SIGHUP)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = (project / "hungup.out").read_text()
    assert proc.returncode == 129, output[-3000:]
    assert f"1 Slurm job(s) keep running: {job} (the same command waits for them)" in output
    assert "cancelled" not in output
    assert _stage2_tasks(cluster).get(job) == "RUNNING"
    assert cluster.client(["scancel", job]).returncode == 0  # the test's own cleanup


def _scripts(plan_output: str) -> dict[str, str]:
    """The job scripts `harness plan --executor slurm` prints, by the step kind they are for."""
    out = {}
    for chunk in plan_output.split("# job script for ")[1:]:
        kind = chunk.split()[0]
        body = chunk[chunk.index("#!/bin/bash") :]
        end = body.index("submitit.core._submit")
        out[kind] = body[: body.index("\n", end) + 1]
    return out


def _test_only(cluster: Cluster, project: Path, scripts: dict[str, str]) -> dict[str, str]:
    """sbatch --test-only's verdict on each script: "" when accepted, else its error."""
    verdicts = {}
    for kind, text in scripts.items():
        path = project / f"{kind}.sbatch"
        path.write_text(text)
        done = cluster.client(["sbatch", "--test-only", str(path)])
        verdicts[kind] = "" if done.returncode == 0 else done.stderr.strip()
    return verdicts


@pytest.mark.slurm
def test_plan_scripts_pass_sbatch_test_only(cluster, project):
    cluster.start(gpus=0)
    cpu = harness(project, "plan", "--executor", "slurm")
    assert cpu.returncode == 0, cpu.stderr
    scripts = _scripts(cpu.stdout)
    assert set(scripts) == {"stage1", "stage2", "generate"}  # scoring: no job (run_here)
    assert "# score steps run in this process's workers, not as jobs" in cpu.stdout
    assert _test_only(cluster, project, scripts) == dict.fromkeys(scripts, "")
    # GPU-shaped scripts are refused by this node, which has no GPUs: what the executor avoids
    gpu_plan = harness(project, "plan", "--executor", "slurm", "--matrix", "hardware=gpu2")
    gpu = _scripts(gpu_plan.stdout)
    assert "#SBATCH --gpus-per-node=2" in gpu["stage2"]
    assert _test_only(cluster, project, {"stage2": gpu["stage2"]})["stage2"]


@pytest.mark.slurm
@pytest.mark.slow
def test_stage2_on_two_cpu_ranks_runs_as_two_slurm_tasks(cluster, project):
    from harness.plan.plan_file import Plan

    cluster.start(gpus=0)
    done = harness(project, "run", "--matrix", "hardware=cpu-2", out="ranks", exp="train")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = project / "ranks"
    script = submissions(run)["harness-stage2"]
    assert "#SBATCH --ntasks-per-node=2" in script and "gpus" not in script
    steps = manifests(run)
    (stage2,) = [s for s in steps if s.startswith("stage2/")]
    job = steps[stage2]["cluster_job"]["job_id"]
    # srun started two tasks: rank 1 trained as the rank Slurm gave it, in its own task
    (peer,) = (run / "slurm").rglob(f"{job}_1_log.out")
    assert f"{stage2}: rank 1 of 2 (Slurm)" in peer.read_text()
    # rank 0's log: one world of two ranks split the global batch of 16, no launcher between
    log = (run / "logs" / (stage2.replace("/", "__") + ".log")).read_text()
    assert "steps of 16 (2 x 8 x 1)" in log, log
    assert re.search(r"DeepSpeed engine: ZeRO-[23] over 2 rank\(s\)", log), log
    plan = Plan.load(run)
    record = json.loads((plan.store.step_dir(plan.step(stage2).key) / "record.json").read_text())
    assert record["launch_command"] is None and record["steps"] == 5


@pytest.mark.slurm
@pytest.mark.slow
def test_gpu_cluster_gives_gpu_shaped_steps_their_gpus(cluster, project):
    cluster.start(gpus=2)
    plan = harness(project, "plan", "--executor", "slurm", "--matrix", "hardware=gpu2")
    scripts = _scripts(plan.stdout)
    assert _test_only(cluster, project, scripts) == dict.fromkeys(scripts, "")

    # the tiny model trains on the CPU inside jobs that hold the node's two (fake) GPUs
    done = harness(project, "run", "--matrix", "hardware=gpu2", out="gpus", exp="train")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "#SBATCH --gpus-per-node=2" in submissions(project / "gpus")["harness-stage2"]
    steps = manifests(project / "gpus")
    assert sorted(s.split("/")[0] for s in steps) == ["stage1", "stage2"]
    assert all(m["cluster_job"]["executor"] == "slurm" for m in steps.values())


@pytest.mark.slurm
@pytest.mark.slow
def test_stage2_across_two_nodes_trains_as_one_world(cluster, project):
    from harness.plan.plan_file import Plan

    reason = missing_names(2)
    if reason:
        pytest.skip(reason)
    cluster.start(gpus=0, nodes=2)
    done = harness(project, "run", "--matrix", "hardware=cpu-2node", out="nodes", exp="train")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = project / "nodes"
    scripts = submissions(run)
    assert "#SBATCH --nodes=2" in scripts["harness-stage2"]
    assert "#SBATCH --ntasks-per-node=1" in scripts["harness-stage2"]
    steps = manifests(run)
    (stage2,) = [s for s in steps if s.startswith("stage2/")]
    job = steps[stage2]["cluster_job"]["job_id"]
    log = (run / "logs" / (stage2.replace("/", "__") + ".log")).read_text()
    (peer_out,) = (run / "slurm").rglob(f"{job}_1_log.out")
    peer = peer_out.read_text()
    line = r"rank {} of 2 from Slurm on node (\S+), master (\S+):(\d+)"
    rank0, rank1 = re.search(line.format(0), log), re.search(line.format(1), peer)
    assert rank0 and rank1, (log, peer)
    # one rank on each node; both found the master by the first node's name, on one port
    assert rank0[1] != rank1[1]
    assert rank0[2] == rank1[2] == rank0[1] and rank0[3] == rank1[3]
    assert f"{stage2}: rank 1 of 2 (Slurm)" in peer
    # one world of two ranks split the global batch of 16, with no hostfile and no launcher
    assert "steps of 16 (2 x 8 x 1)" in log, log
    assert re.search(r"DeepSpeed engine: ZeRO-[23] over 2 rank\(s\)", log), log
    assert "HARNESS_HOSTFILE" not in log + peer
    plan = Plan.load(run)
    record = json.loads((plan.store.step_dir(plan.step(stage2).key) / "record.json").read_text())
    assert record["launch_command"] is None and record["steps"] == 5
