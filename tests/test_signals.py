"""SIGTERM or SIGINT to the main `harness run` process (or Ctrl-C to its group) during stage 2:
its workers stop with it, it says what it kept and exits 130/143, no process is left behind, and
the rerun resumes the interrupted training from its last checkpoint. A hung-up terminal (SIGHUP)
does the same and exits 129; under nohup a hangup changes nothing."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import _core_fakes as fakes
import psutil
import pytest

TESTS = Path(__file__).resolve().parent
CELLS = ("fake-a_fake_lr0.0001", "fake-a_fake_lr0.0002")


@pytest.fixture
def fake_cli(tmp_path):
    """The fake plugins installed as a distribution, and the command that runs them."""
    dist = tmp_path / "harness_fakes-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: harness-fakes\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness]\nfakes = _core_fakes\n")
    (tmp_path / "reg.toml").write_text(fakes.REGISTRY)
    (tmp_path / "exp.toml").write_text(fakes.EXPERIMENT)
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{TESTS}",
        "FAKE_LEDGER": str(tmp_path / "ledger"),
        "FAKE_CHECKPOINTS": "60",
    }
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--config",
        str(tmp_path / "exp.toml"),
        "--registry",
        str(tmp_path / "reg.toml"),
        "--out",
        str(tmp_path / "run"),
        "--matrix",
        "sizes=fake-a",
        "lr=1e-4,2e-4",
    ]
    return tmp_path, cmd, env


def _checkpoints(ledger: Path) -> dict[str, int]:
    """The last checkpoint each stage-2 cell wrote, from the fake backend's ledger."""
    last: dict[str, int] = {}
    if ledger.exists():
        for line in ledger.read_text().splitlines():
            if line.startswith("checkpoint "):
                _, cell, step = line.split()
                last[cell] = int(step)
    return last


def _group_members(pgids: set[int]) -> list[int]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) in pgids and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


@pytest.mark.parametrize(
    ("signum", "code", "to_group"),
    [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, False), (signal.SIGINT, 130, True)],
    ids=["sigterm-to-main", "sigint-to-main", "ctrl-c-to-its-group"],
)
def test_signal_stops_workers_and_rerun_resumes(fake_cli, signum, code, to_group):
    tmp_path, cmd, env = fake_cli
    ledger = tmp_path / "ledger"
    proc = subprocess.Popen(
        [*cmd, "--max-parallel", "2"],
        env={**env, "FAKE_STEP_S": "0.25"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a command typed at a terminal
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_checkpoints(ledger)) == 2 and min(_checkpoints(ledger).values()) >= 2:
            break  # both cells are training in their workers, each past a checkpoint
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    main = psutil.Process(proc.pid)
    children = main.children(recursive=True)
    workers = {c.pid for c in children if c.pid != proc.pid and os.getpgid(c.pid) == c.pid}
    assert len(workers) == 2, "each worker leads its own process group"

    if to_group:
        os.killpg(proc.pid, signum)  # what Ctrl-C at the terminal does
    else:
        proc.send_signal(signum)  # to the main process alone
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    lines = [line for line in (out + err).splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1, out + err
    assert lines == ["interrupted: 1 steps finished, 2 in flight kept for resume"]
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left behind: {alive}"
    assert not _group_members(workers)
    kept = _kept_mid_training(tmp_path)
    for cell in CELLS:  # each worker unwound its step (its cleanup ran) before it exited
        log = (tmp_path / "run" / "logs" / f"stage2__{cell}.log").read_text()
        assert "stopped:" in log
    _rerun_resumes_from(kept, fake_cli)


def _kept_mid_training(tmp_path: Path) -> list[int]:
    """The checkpoint steps the stopped run kept, one per cell, both mid-training."""
    kept = sorted(
        json.loads(path.read_text())["step"]
        for path in (tmp_path / "run" / "store" / "work").glob("*/checkpoint.json")
    )
    assert len(kept) == 2 and all(2 <= step < 60 for step in kept)
    return kept


def _rerun_resumes_from(kept: list[int], fake_cli) -> None:
    """The same command finishes, each cell's training resumed from the checkpoint it kept."""
    tmp_path, cmd, env = fake_cli
    ledger = tmp_path / "ledger"
    ledger.write_text("")
    done = subprocess.run(
        cmd, env={**env, "FAKE_STEP_S": "0"}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr + done.stdout
    resumed = [line for line in ledger.read_text().splitlines() if line.startswith("resume ")]
    assert sorted(int(line.split()[-1]) for line in resumed) == kept
    assert {line.split()[1] for line in resumed} == set(CELLS)


def test_resume_passes_over_a_checkpoint_cut_short_by_the_signal(tmp_path):
    from harness.train.loop import CHECKPOINTS, last_checkpoint
    from harness.train.measure import METER_FILE

    folder = tmp_path / CHECKPOINTS
    whole = folder / "checkpoint-58"
    whole.mkdir(parents=True)
    for name in ("adapter_model.safetensors", "trainer_state.json", METER_FILE):
        (whole / name).write_text("{}")
    (folder / "checkpoint-116").mkdir()  # the save a signal interrupted: nothing written yet
    half = folder / "checkpoint-174"  # weights written, the trainer state not yet
    half.mkdir()
    (half / "adapter_model.safetensors").write_text("{}")
    assert last_checkpoint(tmp_path) == str(whole)
    assert last_checkpoint(tmp_path / "nothing-here") is None


def _on_a_terminal(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """Start `cmd` in a new session whose controlling terminal is a fresh pty; returns the
    process and the pty's master end (closing it hangs the terminal up: SIGHUP)."""
    import pty
    import termios

    master, slave = pty.openpty()

    def take_the_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        cmd, env=env, stdin=slave, stdout=slave, stderr=slave, preexec_fn=take_the_terminal
    )
    os.close(slave)
    return proc, master


def _drain(master: int) -> threading.Thread:
    """Read the terminal's output as a terminal would (a full pty would block the run)."""

    def read() -> None:
        while True:
            try:
                if not os.read(master, 65536):
                    return
            except OSError:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def test_a_hung_up_terminal_stops_the_workers_and_the_rerun_resumes(fake_cli):
    """The terminal goes away (an ssh connection drops): SIGHUP, handled as SIGTERM is, with the
    terminal's output silenced so that the stop is not cut short by writes that fail."""
    tmp_path, cmd, env = fake_cli
    ledger = tmp_path / "ledger"
    proc, master = _on_a_terminal([*cmd, "--max-parallel", "2"], {**env, "FAKE_STEP_S": "0.25"})
    _drain(master)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_checkpoints(ledger)) == 2 and min(_checkpoints(ledger).values()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 2
    os.close(master)  # hang up
    assert proc.wait(timeout=120) == 129
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left behind: {alive}"
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["cells"]  # written on the way out, although nobody could read the terminal
    _rerun_resumes_from(_kept_mid_training(tmp_path), fake_cli)


def test_under_nohup_a_hangup_changes_nothing(fake_cli):
    tmp_path, cmd, env = fake_cli
    ledger = tmp_path / "ledger"

    def nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    proc = subprocess.Popen(
        cmd,
        env={**env, "FAKE_STEP_S": "0.02"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=nohup,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not _checkpoints(ledger):
        time.sleep(0.05)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "interrupted" not in out + err
