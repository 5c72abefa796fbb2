"""Every built-in benchmark offers `check(source, ctx)`: a missing path is one line, the
synthetic set passes untouched, and a bad data folder stops `harness plan` with exit 2 before
anything is written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from _bench_fixtures import context, llava_bench_dir, local
from harness_plugins.benchmarks.llava_bench import LlavaBench
from harness_plugins.benchmarks.mm_vet import MMVet
from harness_plugins.benchmarks.mmbench import MMBench
from harness_plugins.benchmarks.mmlu import MMLU
from harness_plugins.benchmarks.vicuna80 import Vicuna80

from harness.errors import UserError
from harness.protocols import SourceCheck
from harness.specs import DataSource

BUILTINS = [LlavaBench(), MMVet(), MMBench(), MMLU(), Vicuna80()]


@pytest.mark.parametrize("bench", BUILTINS, ids=lambda b: b.name)
def test_check_refuses_a_missing_path_in_one_line(tmp_path, bench):
    assert isinstance(bench, SourceCheck)
    ctx = context(tmp_path, bench.name)
    with pytest.raises(UserError) as err:
        bench.check(local(tmp_path / "nowhere"), ctx)
    assert "nowhere" in str(err.value) and "\n" not in str(err.value)
    assert bench.check(DataSource(kind="synthetic"), ctx) is None
    assert not ctx.work_dir.exists()


def test_plan_stops_on_a_repeated_id_with_exit_2_and_writes_nothing(tmp_path):
    root = llava_bench_dir(tmp_path / "lb")
    lines = (root / "questions.jsonl").read_text().splitlines()
    (root / "questions.jsonl").write_text("\n".join([*lines, lines[0]]) + "\n")
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "plan", "--benchmarks", "llava-bench",
         "--data", f"llava-bench={root}", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        f"{root / 'questions.jsonl'}: question_id 0 appears 2 times; ids must be unique"
    )
    assert not out.exists()
