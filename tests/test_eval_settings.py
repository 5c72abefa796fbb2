"""Which max_new_tokens a benchmark sees: its own table, then the experiment's, else its own
protocol value; and the reference docs list every TrainSpec and EvalSpec field."""

from __future__ import annotations

import re
from pathlib import Path

import _core_fakes as fakes
import pytest

from harness.plan.build import Options, build_plan
from harness.plugins import load_plugins
from harness.specs import EvalSpec, TrainSpec

HOOKS_MD = Path(__file__).resolve().parent.parent / "docs" / "hooks.md"


def _evals(tmp_path, **opts) -> dict[str, EvalSpec]:
    plan = build_plan(Options(out=tmp_path / "run", **opts), load_plugins(extra=[fakes]))
    cell = next(iter(plan.cells.values()))
    return {e.benchmark: e for e in cell.evals}


def test_default_experiment_sets_built_ins_per_benchmark_and_leaves_plugins_their_own(tmp_path):
    evals = _evals(tmp_path, benchmarks="mmlu,llava-bench,fakebench", matrix=["sizes=tiny-1m"])
    assert evals["mmlu"].max_new_tokens == 48 and evals["llava-bench"].max_new_tokens == 48
    assert evals["fakebench"].max_new_tokens is None  # the plugin's protocol value applies


def test_a_benchmark_table_wins_over_the_experiment_wide_value(tmp_path):
    config = tmp_path / "exp.toml"
    config.write_text(
        'extends = "default"\n[eval]\nmax_new_tokens = 20\n[eval.mmlu]\nmax_new_tokens = 7\n'
    )
    evals = _evals(tmp_path, config=config, benchmarks="mmlu,fakebench")
    assert evals["mmlu"].max_new_tokens == 7
    assert evals["fakebench"].max_new_tokens == 20


@pytest.mark.parametrize("spec", [TrainSpec, EvalSpec])
def test_every_field_is_in_the_reference_table(spec):
    after_header = HOOKS_MD.read_text().split(f"| `{spec.__name__}` field |", 1)[1]
    table = after_header.split("\n\n", 1)[0]
    assert re.findall(r"^\| `(\w+)` \|", table, re.M) == list(spec.model_fields)
