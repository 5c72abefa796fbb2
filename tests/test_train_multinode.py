"""Stage 2 on two nodes through the deepspeed launcher's hostfile path (pdsh), from `harness run`.

Both nodes are this machine (tests/_pdsh.py): pdsh is real, `ssh` is a stand-in that runs the
command here in a fresh environment, as a login on another node starts. What this shows is what
a second machine would see: the ranks there get only what the launch command exports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from _pdsh import stand_in_ssh, unavailable
from _quick import QUICK_REGISTRY, QUICK_TRAINING

pytestmark = [pytest.mark.slurm, pytest.mark.slow]  # installs pdsh as root, as the Slurm tests

EXPERIMENT = (
    """
sizes = ["quick"]
methods = ["lora"]
benchmarks = []
judge = { name = "reference" }
hardware = "cpu-2node"
"""
    + QUICK_TRAINING
)


def test_stage2_on_two_hostfile_nodes_trains_as_one_world_with_the_harness_environment(tmp_path):
    from harness.plan.plan_file import Plan

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    bin_dir, logins = stand_in_ssh(tmp_path / "ssh")
    (tmp_path / "reg.toml").write_text(QUICK_REGISTRY)
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("localhost slots=1\n127.0.0.1 slots=1\n")
    home = tmp_path / "home"  # the default cache would be here: the ranks must not use it
    home.mkdir()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "HARNESS_CACHE": str(tmp_path / "cache"),
        "HARNESS_HOSTFILE": str(hostfile),
        "HF_TOKEN": "hf_not_a_real_token_but_a_secret",
        "PYTHONUNBUFFERED": "1",
    }
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "harness", "run", "--config", str(tmp_path / "exp.toml")]
    cmd += ["--registry", str(tmp_path / "reg.toml"), "--out", str(run)]
    cmd += ["--store", str(tmp_path / "store")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    plan = Plan.load(run)
    (stage2,) = [s for s in plan.steps if s.kind == "stage2"]
    log = (run / "logs" / (stage2.id.replace("/", "__") + ".log")).read_text()
    # pdsh logged into both nodes; their ranks joined one world of two over the hostfile
    assert set(logins.read_text().split()) == {"127.0.0.1", "localhost"}, log
    assert re.search(r"other nodes get \d+ variable\(s\): .*HARNESS_CACHE", log), log
    assert "not carried to other nodes (secrets, or unexportable values): HF_TOKEN" in log
    assert "--hostfile" in log and "--num_nodes 2" in log
    assert "steps of 16 (2 x 8 x 1)" in log, log
    assert re.search(r"DeepSpeed engine: ZeRO-[23] over 2 rank\(s\)", log), log
    record = json.loads((plan.store.step_dir(stage2.key) / "record.json").read_text())
    assert record["steps"] == 5 and "--hostfile" in record["launch_command"]
    # the ranks found the run's cache, not the default one under a fresh login's home
    assert not (home / ".cache" / "harness").exists()
    # the secret stayed home: not in the step's log, the run's files or the finished step
    for folder in (run, plan.store.step_dir(stage2.key)):
        for path in folder.rglob("*"):
            if path.is_file():
                assert "hf_not_a_real" not in path.read_text(errors="replace"), path
