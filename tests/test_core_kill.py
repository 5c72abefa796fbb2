"""`kill -9` of a running `harness run` loses at most the step in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import _core_fakes as fakes

TESTS = Path(__file__).resolve().parent


def _manifests(run: Path) -> dict[str, dict]:
    out = {}
    for path in (run / "store" / "steps").glob("*/manifest.json"):
        body = json.loads(path.read_text())
        out[body["step"]] = body
    return out


def test_sigkill_mid_run_then_rerun_continues(tmp_path):
    dist = tmp_path / "harness_fakes-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: harness-fakes\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness]\nfakes = _core_fakes\n")
    (tmp_path / "reg.toml").write_text(fakes.REGISTRY)
    (tmp_path / "exp.toml").write_text(fakes.EXPERIMENT)
    ledger = tmp_path / "ledger"
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{TESTS}",
        "FAKE_LEDGER": str(ledger),
        "FAKE_SLEEP": "0.6",
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
        "lr=1e-4,2e-4",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until some steps finished, then kill mid-step
        if ledger.exists() and ledger.read_text().count("stage2") >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = _manifests(tmp_path / "run")
    assert 2 <= len(before) < 2 + 4 * 4, "the kill should land half-way"

    ledger.write_text("")
    env["FAKE_SLEEP"] = "0"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = _manifests(tmp_path / "run")
    assert len(after) == 2 + 4 * 4
    for step, manifest in before.items():  # no finished step ran again
        assert after[step]["start"] == manifest["start"], step
    rerun = [
        line.split()[1] for line in ledger.read_text().splitlines() if line.startswith("stage2")
    ]
    finished = {s.split("/")[1] for s in before if s.startswith("stage2/")}
    assert not set(rerun) & finished
