"""Training on your own data: `train_data` (or `--train-data ROLE=SOURCE`) points stage 1's
captions and stage 2's instructions at LLaVA-format JSON files (here: the synthetic world written
to disk by `harness data synth`, in LLaVA's layout), instead of the built-in synthetic world."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _quick import QUICK_REGISTRY, QUICK_TRAINING

EXPERIMENT = (
    """
sizes = ["quick"]
methods = ["lora"]
benchmarks = []
judge = { name = "reference" }
"""
    + QUICK_TRAINING
)


def _harness(tmp: Path, *args: str, out: str = "run") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "harness", *args, "--config", str(tmp / "exp.toml")]
    cmd += ["--registry", str(tmp / "reg.toml"), "--out", str(tmp / out)]
    cmd += ["--store", str(tmp / "store")]
    env = {**os.environ, "HARNESS_CACHE": str(tmp / "cache")}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "reg.toml").write_text(QUICK_REGISTRY)
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    world = tmp_path / "data"
    cmd = [sys.executable, "-m", "harness", "data", "synth", "--out", str(world)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    records = json.loads((world / "stage2" / "llava_instruct.json").read_text())
    (world / "stage2" / "mine.json").write_text(json.dumps(records[:40]))
    return tmp_path


def _steps(tmp: Path, *flags: str) -> dict[str, dict]:
    done = _harness(tmp, "plan", "--json", *flags)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["steps"]


@pytest.mark.slow
def test_stages_train_on_the_files_given_and_their_content_keys_the_steps(files):
    world = files / "data"
    captions, mine = world / "stage1" / "captions.json", world / "stage2" / "mine.json"
    flags = ("--train-data", f"captions={captions}", "--train-data", f"instructions={mine}")
    done = _harness(files, "run", *flags)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    logs = {p.name: p.read_text() for p in (files / "run" / "logs").glob("*.log")}
    (stage2,) = [text for name, text in logs.items() if name.startswith("stage2__")]
    assert re.search(r"\b40 samples, ", stage2), stage2  # the 40 records of mine.json
    plan = json.loads((files / "run" / "plan.json").read_text())
    (cell,) = plan["cells"].values()
    assert cell["mix"]["instructions"]["kind"] == "local"
    assert cell["mix"]["instructions"]["path"] == str(mine)
    given = {"captions": str(captions), "instructions": str(mine)}
    assert plan["experiment"]["train_data"] == given
    # the results say what each stage trained on, with each file's sha256 as it was read
    from harness.support.fingerprint import file_sha256

    results = json.loads((files / "run" / "results.json").read_text())
    assert results["cells"][0]["data"] == {
        role: {"kind": "local", "path": str(path), "split": None, "sha256": file_sha256(path)}
        for role, path in (("captions", captions), ("instructions", mine))
    }

    # the same flags plan nothing new; a changed file retrains stage 2 only
    assert _steps(files, *flags) == {
        "stage1": {"total": 1, "done": 1},
        "stage2": {"total": 1, "done": 1},
    }
    records = json.loads(mine.read_text())
    mine.write_text(json.dumps(records[:39]))
    assert _steps(files, *flags) == {
        "stage1": {"total": 1, "done": 1},
        "stage2": {"total": 1, "done": 0},
    }
    # and the built-in world is another data set: other steps
    assert _steps(files) == {"stage1": {"total": 1, "done": 0}, "stage2": {"total": 1, "done": 0}}


@pytest.mark.parametrize(
    ("flag", "line"),
    [
        ("instructions={missing}", "error: train data instructions: {missing} does not exist"),
        ("pictures=x.json", "train_data: unknown role 'pictures' (one of captions, instructions"),
        ("captions", "malformed --train-data 'captions': expected ROLE=PATH|hub:ID|synthetic"),
    ],
    ids=["missing-file", "unknown-role", "malformed"],
)
def test_bad_train_data_is_one_line_and_nothing_is_written(files, flag, line):
    missing = files / "nope.json"
    done = _harness(files, "run", "--train-data", flag.format(missing=missing))
    assert done.returncode == 2, done.stderr
    assert line.format(missing=missing) in done.stderr.strip().splitlines()[-1]
    assert not (files / "run").exists()


def test_language_data_that_no_mix_reads_is_warned_about(files):
    language = files / "data" / "stage2" / "sharegpt.json"
    done = _harness(files, "plan", "--train-data", f"language={language}")
    assert done.returncode == 0, done.stderr
    assert "train data language: no cell's mix reads it" in done.stderr
    mixed = _harness(
        files, "plan", "--train-data", f"language={language}", "-m", "mix=llava+sharegpt"
    )
    assert mixed.returncode == 0 and "no cell's mix reads it" not in mixed.stderr
