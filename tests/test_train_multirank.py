"""Stage 2 on two CPU ranks through the real `deepspeed` launcher, started by `harness run`.

The deepspeed launcher spawns CPU ranks itself: with no CUDA device its CPU accelerator counts
`--num_gpus 2` as two ranks, which join over gloo (harness.train.stage2.join_cpu_world). The
cells run on `hardware=cpu-2` (registry.toml) against one-rank runs on `hardware=cpu`, all from
one tiny-1m foundation built in seconds (a registry file cuts its pretraining to 2 steps).

What equality to expect: the global batch is 8 in every run. One rank trains micro batches of 4
with accumulation 2; two ranks train 4 each without accumulation. Sampling groups over world x
accumulation (as LLaVA's trainer does), so both see the same two micro batches per step, and
the loss is normalised over the step's tokens in both. Only the order of float sums differs
(gloo's all-reduce against local accumulation). After 6 steps losses and log likelihoods
agree to about 1e-6 (asserted within 1e-4) and weights to 2.5e-5 relative (within 2e-4).
Over 30 steps Adam magnifies those differences (on a gradient component near zero, a 1e-7
difference can flip the sign of an lr-sized step): printed losses drift apart by up to 8e-4
(measured), asserted within 2e-3. A different sample in a batch moved the first loss by 0.08
(measured before sampling grouped over accumulation); a restart from step 0 would move step
27's loss by about 3.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

STEPS = 30  # checkpoint-25 is written on the way (harness.train.loop.MIN_SAVE_STEPS)
SHORT = 6
RUN_TIMEOUT_S = 600  # a bound on every `harness run`, far above what one takes
LOSS_LINE = re.compile(r"step (\d+)/\d+ loss ([0-9.]+)")

REGISTRY = """
[sizes.tiny-1m.tiny]
pretrain_steps = 2
lookup_rows = 0

[towers.tiny-clip]
tiny = { layers = 3, heads = 4, intermediate = 128, pretrain_steps = 2, label_pooling = "pooled" }
"""

EXPERIMENT = f"""
sizes = ["tiny-1m"]
methods = ["full"]
benchmarks = []
judge = {{ name = "reference" }}
eval = {{ batch_size = 32 }}

[stage1.tiny]
global_batch = 8
micro_batch = 8
max_length = 256
max_steps = 2
precision = "fp32"

[stage2.tiny]
global_batch = 8
micro_batch = 4
max_length = 256
max_steps = {STEPS}
lr = 1e-3
warmup_ratio = 0.0
schedule = "constant"
precision = "fp32"
nodes = 1  # not the study's 4 nodes of full fine-tuning: the two ranks share this machine
"""


class Study:
    """The module's files, environment and `harness run` invocations."""

    def __init__(self, root: Path):
        self.root = root
        (root / "registry.toml").write_text(REGISTRY)
        (root / "experiment.toml").write_text(EXPERIMENT)
        self.env = {
            **os.environ,
            "HARNESS_CACHE": str(root / "cache"),
            # Any JIT build of a DeepSpeed op would land here (the test checks it stays empty).
            "TORCH_EXTENSIONS_DIR": str(root / "torch_extensions"),
            "HF_HUB_OFFLINE": "1",
        }

    def command(self, out: str, *matrix: str, evaluate: bool = False) -> list[str]:
        """`harness run`, evaluating on MMLU (log likelihoods: exact numbers) if asked."""
        return [
            *(sys.executable, "-m", "harness", "run"),
            *("--config", str(self.root / "experiment.toml")),
            *("--registry", str(self.root / "registry.toml")),
            *(("--benchmarks", "mmlu") if evaluate else ()),
            *("--out", str(self.root / out), "--matrix", *matrix),
        ]


class Cell:
    """One cell of a finished run: its stage-2 record, log, saved model and MMLU samples."""

    def __init__(self, run_dir: Path, cell: dict):
        self.dir, self.id = run_dir, cell["id"]
        self.record = cell["train"]["stage2"]
        self.mmlu = cell["benchmarks"].get("mmlu", {}).get("metrics")
        self.log_file = run_dir / "logs" / f"stage2__{self.id}.log"

    def losses(self, text: str | None = None) -> dict[int, float]:
        text = self.log_file.read_text() if text is None else text
        return {int(m[1]): float(m[2]) for m in LOSS_LINE.finditer(text)}

    def model(self) -> dict:
        from safetensors.torch import load_file

        for manifest in (self.dir / "store" / "steps").glob("*/manifest.json"):
            if json.loads(manifest.read_text())["step"] == f"stage2/{self.id}":
                return load_file(str(manifest.parent / "model.safetensors"))
        raise AssertionError(f"no stage-2 output of {self.id} in {self.dir}")

    def logliks(self) -> list[list[float]]:
        path = self.dir / "samples" / self.id / "mmlu.jsonl"
        return [json.loads(line)["logliks"] for line in path.read_text().splitlines()]


def _timed_run(study: Study, out: str, *matrix: str, evaluate: bool = False) -> dict[int, Cell]:
    """`harness run` to the end; its cells by their stage-2 steps."""
    start = time.perf_counter()
    done = subprocess.run(
        study.command(out, *matrix, evaluate=evaluate),
        env=study.env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"\n{out}: harness run {' '.join(matrix)} took {time.perf_counter() - start:.1f}s")
    results = json.loads((study.root / out / "results.json").read_text())
    cells = [Cell(study.root / out, cell) for cell in results["cells"]]
    return {cell.record["steps"]: cell for cell in cells}


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Study:
    return Study(tmp_path_factory.mktemp("multirank"))


@pytest.fixture(scope="module")
def one_rank(study) -> dict[int, Cell]:
    return _timed_run(study, "one-rank", "hardware=cpu", f"steps={SHORT},{STEPS}", evaluate=True)


@pytest.fixture(scope="module")
def zero3(study) -> Cell:
    cells = _timed_run(study, "zero3", "hardware=cpu-2", "zero=3", f"steps={SHORT}", evaluate=True)
    return cells[SHORT]


def _side_by_side(name: str, ours: dict[int, float], one: dict[int, float]) -> None:
    print(f"\nstep  one rank  two ranks ({name})")
    for step in sorted(ours):
        print(f"{step:4d}  {one[step]:.4f}    {ours[step]:.4f}")


def test_zero3_on_two_ranks_trains_as_one_rank_and_its_gathered_model_evaluates_the_same(
    study, one_rank, zero3
):
    one = one_rank[SHORT]
    ours, theirs = zero3.losses(), one.losses()
    _side_by_side("ZeRO-3", ours, theirs)
    assert sorted(ours) == sorted(theirs) == list(range(1, SHORT + 1))
    for step, loss in ours.items():
        assert loss == pytest.approx(theirs[step], abs=2e-4), step
    assert zero3.record["steps"] == SHORT and zero3.record["gpus"] == 0
    assert zero3.record["last_loss"] == pytest.approx(one.record["last_loss"], abs=1e-4)
    assert zero3.record["last_loss"] < zero3.record["first_loss"] - 0.5  # it trained
    # ZeRO-3 holds a shard per rank; the saved model is the whole one, gathered on rank 0.
    # Measured: every tensor within 2.5e-5 of the one-rank run's (relative L2; one embedding
    # row of a rare token 1.1e-4 apart in absolute terms), while 24 more steps move every
    # trained tensor by 5e-3 or more: a stale, partial or empty gather cannot pass.
    gathered, plain = zero3.model(), one.model()
    assert gathered.keys() == plain.keys()
    for name, tensor in plain.items():
        assert gathered[name].shape == tensor.shape and tensor.numel() > 0, name
        distance = (gathered[name] - tensor).norm() / tensor.norm().clamp_min(1e-12)
        assert distance < 2e-4, name
    # ... and evaluates as the one-rank model does, through the evaluation path.
    for a, b in zip(zero3.logliks(), one.logliks(), strict=True):
        assert a == pytest.approx(b, abs=1e-4)
    assert zero3.mmlu == one.mmlu
    assert not (study.root / "torch_extensions").exists()  # no DeepSpeed op was compiled


def test_the_exact_launch_command_is_in_the_results(zero3, one_rank):
    cmd = zero3.record["launch_command"]
    assert cmd[:5] == ["deepspeed", "--num_nodes", "1", "--num_gpus", "2"]
    assert cmd[cmd.index("--module") + 1] == "harness.train.launch"
    assert Path(cmd[cmd.index("--cell") + 1]).name == "cell.json"
    log = zero3.log_file.read_text()
    assert f"launching: {shlex.join(cmd)}" in log and "HARNESS_HOSTFILE" not in log
    assert "dist_world_size=2" in log  # the launcher's own report of the world it started
    assert "DeepSpeed engine: ZeRO-3 over 2 rank(s)" in log  # the engine rank 0 trained in
    assert one_rank[SHORT].record["launch_command"] is None


def _end(proc: subprocess.Popen) -> None:
    """Kill a test's own process and everything under it, if it is still running."""
    if proc.poll() is not None:
        return
    for child in [*_process_tree(proc.pid), psutil.Process(proc.pid)]:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def _process_tree(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _rank(tree: list[psutil.Process], local_rank: int) -> psutil.Process:
    for proc in tree:
        cmdline = proc.cmdline()
        if "harness.train.launch" in cmdline and f"--local_rank={local_rank}" in cmdline:
            return proc
    raise AssertionError(f"no rank {local_rank} among {[p.cmdline() for p in tree]}")


def _wait_for(path_glob: str, root: Path, proc: subprocess.Popen) -> Path:
    deadline = time.monotonic() + RUN_TIMEOUT_S  # a bound against a hang, not a measurement
    while time.monotonic() < deadline:
        found = sorted(root.glob(path_glob))
        if found:
            return found[0]
        assert proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.02)
    raise AssertionError(f"no {path_glob} under {root} within {RUN_TIMEOUT_S}s")


def test_zero2_rank_killed_mid_stage_fails_cleanly_and_the_rerun_resumes(study, one_rank):
    out, matrix = study.root / "zero2", ("hardware=cpu-2", "zero=2")
    start = time.perf_counter()
    proc = subprocess.Popen(
        study.command("zero2", *matrix),
        env=study.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        state = _wait_for("store/work/*/checkpoints/checkpoint-25/trainer_state.json", out, proc)
        tree = _process_tree(proc.pid)
        _rank(tree, 1).send_signal(signal.SIGKILL)
        print(f"\nzero2: rank 1 killed {time.perf_counter() - start:.1f}s into the run")
        assert proc.wait(timeout=RUN_TIMEOUT_S) == 1  # the step failed; the run did not hang
    finally:
        _end(proc)  # only where an assertion above left the run going
    gone, alive = psutil.wait_procs(tree, timeout=60)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    results = json.loads((out / "results.json").read_text())
    (failed,) = results["cells"][0]["failed_steps"]
    assert failed["step"].startswith("stage2/") and "exit code" in failed["error"]
    first_attempt = Path(failed["log"]).read_text()
    assert state.parent.is_dir()  # the checkpoint outlives the failed attempt

    rerun = _timed_run(study, "zero2", *matrix)[STEPS]
    second_attempt = rerun.log_file.read_text()[len(first_attempt) :]
    assert f"resuming from {state.parent}" in second_attempt
    resumed = rerun.losses(second_attempt)
    assert min(resumed) > 25 and max(resumed) == STEPS  # steps 1-25 did not run again
    one = one_rank[STEPS]
    ours, theirs = {**rerun.losses(first_attempt), **resumed}, one.losses()
    _side_by_side("ZeRO-2, rank 1 killed after step 25, resumed", ours, theirs)
    for step, loss in ours.items():
        assert loss == pytest.approx(theirs[step], abs=2e-3), step
    assert rerun.record["steps"] == STEPS
    assert rerun.record["first_loss"] == pytest.approx(one.record["first_loss"], abs=1e-4)
    assert rerun.record["last_loss"] == pytest.approx(one.record["last_loss"], abs=2e-3)


# A stand-in launcher: two "ranks" that watch the launching process as real ranks do
# (harness.train.launch.main), announce their pids, and wait; it waits for them. Each rank
# writes its line in one write: both share one pipe, and print() under PYTHONUNBUFFERED writes
# word by word, which interleaved the two lines ("rank-pidrank-pid  3133331332") and hid both.
FAKE_LAUNCHER = """
import subprocess, sys
rank = (
    "import os, time\\n"
    "from harness.train.launch import PARENT_ENV, exit_with_parent\\n"
    "exit_with_parent(int(os.environ[PARENT_ENV]))\\n"
    "os.write(1, f'rank-pid {os.getpid()}\\\\n'.encode())\\n"
    "time.sleep(600)\\n"
)
ranks = [subprocess.Popen([sys.executable, "-c", rank]) for _ in range(2)]
for r in ranks:
    r.wait()
"""

# The launching side: run_launched on a cpu-2 cell, the launcher replaced by the stand-in.
# It takes Ctrl-C as a terminal's process does: an ignored SIGINT is inherited across exec, and
# a test process that some earlier test left ignoring it would otherwise pass that on.
LAUNCHING = """
import signal
import sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
import harness.train.launch as launch
from harness.specs import CellSpec
launch.launch_command = lambda *args, **kwargs: [sys.executable, "-c", sys.argv[2]]
cell = CellSpec.model_validate_json(Path(sys.argv[1]).read_text())
out = Path(sys.argv[1]).parent / "out"
launch.run_launched(cell, "full", out, out, lambda line: print(line, flush=True))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["interrupt", "kill-9"])
def test_a_stopped_step_leaves_no_launched_process(tmp_path, signum):
    """Interrupted, the step ends the launcher's process group; killed with -9 (no chance to
    clean up), its ranks notice their launching process is gone and exit."""
    from _train_fixtures import cell, write_data

    from harness.specs import HardwareSpec

    cpu2 = HardwareSpec(name="cpu-2", accelerator="cpu", gpus_per_node=2, usd_per_node_hour=0.1)
    spec = cell(write_data(tmp_path / "data"), "full").model_copy(update={"hardware": cpu2})
    (tmp_path / "cell.json").write_text(spec.model_dump_json())
    stderr = tmp_path / "launching.stderr"  # the interrupted one's KeyboardInterrupt traceback
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHING, str(tmp_path / "cell.json"), FAKE_LAUNCHER],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    lines: queue.Queue[str | None] = queue.Queue()
    # keep draining its output throughout: a child whose stdout pipe fills while nobody reads
    # cannot even flush at exit, and would look like a launch that never ends
    threading.Thread(target=_drain, args=(proc, lines), daemon=True).start()
    try:
        ranks, seen = _stand_in_ranks(lines, deadline=time.monotonic() + 120)
        assert len(ranks) == 2, (
            f"the stand-in ranks did not start; output: {seen[-20:]}; "
            f"stderr: {stderr.read_text()[-2000:]}"
        )
        launched = _process_tree(proc.pid)
        proc.send_signal(signum)
        proc.wait(timeout=60)
    finally:
        _end(proc)
    gone, alive = psutil.wait_procs(launched, timeout=60)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    assert set(ranks) <= set(gone)


def _drain(proc: subprocess.Popen, lines: queue.Queue) -> None:
    for line in proc.stdout or []:
        lines.put(line)
    lines.put(None)  # the pipe closed


def _stand_in_ranks(lines: queue.Queue, deadline: float) -> tuple[list[psutil.Process], list[str]]:
    """The two stand-in ranks' processes as they announce themselves, and every line seen; fewer
    ranks when the pipe closes or the deadline passes first."""
    ranks, seen = [], []
    while len(ranks) < 2:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line.rstrip())
        if line.startswith("rank-pid "):
            ranks.append(psutil.Process(int(line.split()[1])))
    return ranks, seen
