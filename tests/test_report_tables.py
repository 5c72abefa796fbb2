"""The study's tables from a fixed hand-made results.json, as text at a fixed width (snapshots),
and the rules that decide which tables appear, how numbers round and what gets marked."""

from __future__ import annotations

import io
import re

import pytest
from _report_fixtures import STUDY_RUN, WIDTH, assert_snapshot, benchmark, study_results
from _report_fixtures import table_text as text_of
from rich.console import Console

from harness.report import print_report, render_text
from harness.report.build import build_tables
from harness.report.table import hours_value, params_value, score_value
from harness.results import CellResult, RunResults, TrainRecord

TABLES = ["table1", "table2", "table3a", "table3b", "table4", "table5", "generic"]
TABLES += ["benchmark-pope", "failed_steps"]


@pytest.fixture(scope="module")
def tables():
    return {t.key: t for t in build_tables(study_results())}


@pytest.fixture(scope="module")
def paper_tables():
    return {t.key: t for t in build_tables(study_results(), with_paper=True)}


@pytest.mark.parametrize("key", TABLES)
def test_each_table_matches_its_snapshot(tables, key):
    assert_snapshot(f"{key}.txt", text_of(tables[key]))


@pytest.mark.parametrize("key", ["table1", "table2", "table3a", "table3b", "table4", "table5"])
def test_paper_rows_snapshot(paper_tables, key):
    assert_snapshot(f"{key}_with_paper.txt", text_of(paper_tables[key]))


def test_narrow_terminal_snapshot():
    assert_snapshot("report_width60.txt", render_text(study_results(), width=60))


def test_table1_rows_per_beam_and_marks(tables):
    text = text_of(tables["table1"])
    # beam 1 and beam 5 of the same cell are separate rows, the paper's layout
    assert re.search(
        r"33b full 336px llava\s+\|\s+5 \|\s+83\.6 \|\s+72\.4 \|\s+61\.8 \|\s+74\.6", text
    )
    # reference judge + harness-own protocol: marked, and the legend says what marks mean
    assert (
        "71.0*†" in text and "* harness-own protocol" in text and "† judge is not a GPT-4" in text
    )
    # failed items counted and explained, never folded into the score
    assert "2 failed item(s) excluded in 33b-lora64-336-llava-b1 (parse 2)" in text
    assert (
        "judge openai:gpt-4-0314, protocol llava-bench-in-the-wild v1 (official) [6 cells]" in text
    )


def test_table2_total_is_mean_plus_minus_std(tables):
    # runs 32.6, 33.0, 33.3: mean 32.97, population std 0.287 -> "33.0±0.3"
    assert "33.0±0.3" in text_of(tables["table2"])


def test_table5_puts_base_llm_rows_beside_llava_rows(tables):
    text = text_of(tables["table5"])
    assert re.search(r"base LLM 33b\s+\|\s+-\s+\|\s+-\s+\|\s+-\s+\|\s+85\.0\s+\|\s+59\.1", text)


def test_table4_rounding_and_units(tables):
    text = text_of(tables["table4"])
    assert "4.79" in text and "0.49B" in text and "5.80" in text  # two decimals for GPU-hours
    assert score_value(71.84).text == "71.8" and score_value(32.97, std=0.287).text == "33.0±0.3"
    assert score_value(float("nan")).text == "-" and score_value(float("nan")).raw is None
    assert hours_value(4.6849).text == "4.68" and hours_value(1.3, estimated=True).text == "~1.30"
    assert params_value(260_000_000).text == "0.26B" and params_value(1_234_567).text == "1.23M"


def test_generic_table_takes_what_no_layout_shows(tables):
    text = text_of(tables["generic"])
    assert "pope (f1)" in text and "85.3*" in text  # rounded to one decimal, harness-own marked
    assert "mmlu" not in tables["generic"].columns  # Table 5 already shows MMLU


def _cell(cid: str, axes: dict, **benchmarks) -> CellResult:
    return CellResult(
        id=cid,
        axes=axes,
        spec_sha256="0",
        benchmarks={
            name.replace("_", "-"): benchmark(name.replace("_", "-"), v, primary=p)
            for name, (v, p) in benchmarks.items()
        },
    )


def _keys(cells) -> list[str]:
    run = RunResults(harness_version="0", created="now", experiment={}, cells=cells)
    return [t.key for t in build_tables(run)]


def test_tables_appear_only_when_the_run_has_their_axes():
    one = _cell(
        "a",
        {"size": "tiny-1m", "method": "lora", "res": 32, "mix": "llava"},
        llava_bench=(50.0, "overall"),
    )
    assert _keys([one]) == ["table1"]  # one size/res/mix: no 3a; no cost: no Table 4
    two = _cell(
        "b",
        {"size": "tiny-2m", "method": "lora", "res": 32, "mix": "llava"},
        llava_bench=(55.0, "overall"),
        mmlu=(30.0, "micro"),
    )
    assert _keys([one, two]) == ["table1", "table3a", "table5"]
    two.train["stage2"] = TrainRecord(stage="stage2", method="lora", gpu_hours_per_node=0.01)
    assert "table4" in _keys([one, two])
    no_axes = _cell("c", {}, mmlu=(30.0, "micro"), custom=(1.0, "acc"))
    assert _keys([no_axes]) == ["generic"]


def test_plain_output_when_not_a_tty_and_no_colour(monkeypatch):
    buffer = io.StringIO()
    print_report(STUDY_RUN, width=WIDTH, console=Console(file=buffer, width=WIDTH))
    text = buffer.getvalue()
    assert "\x1b[" not in text and "+---" in text  # no escape codes, ASCII boxes
    monkeypatch.setenv("NO_COLOR", "1")
    buffer = io.StringIO()
    console = Console(file=buffer, width=WIDTH, force_terminal=True)
    print_report(STUDY_RUN, console=console)
    text = buffer.getvalue()
    assert "\x1b[3" not in text and "\x1b[9" not in text  # NO_COLOR: no colour codes
    assert "╭" in text  # but still a terminal: rounded boxes


def test_width_adapts_headers():
    wide = render_text(study_results(), width=140)
    narrow = render_text(study_results(), width=60)
    assert "Conversation" in wide and "Conversation" not in narrow
    assert max(len(line) for line in narrow.splitlines()) <= 60


def test_failed_items_of_many_cells_are_one_note_per_benchmark():
    results = study_results()
    failing = [c for c in results.cells if "mmbench" in c.benchmarks][:3]
    assert len(failing) == 3
    for n, cell in enumerate(failing, start=1):
        bench = cell.benchmarks["mmbench"]
        bench.n_failed, bench.failures = n, {"judge_error": n}
    table = {t.key: t for t in build_tables(results)}["table3b"]
    notes = [note for note in table.notes if "failed item" in note]
    cells = ", ".join(f"{n} in {c.id}" for n, c in enumerate(failing, start=1))
    assert notes == [f"mmbench: failed items excluded in 3 cells: {cells} (judge_error 6)"]


def test_a_benchmark_note_on_its_result_is_shown_once_under_its_table():
    results = study_results()
    note = "test split: no answers to score; upload sub.xlsx to the MMBench evaluation server"
    for cell in [c for c in results.cells if "mmbench" in c.benchmarks][:2]:
        cell.benchmarks["mmbench"].extra["note"] = note
    table = {t.key: t for t in build_tables(results)}["table3b"]
    assert [n for n in table.notes if "evaluation server" in n] == [f"mmbench: {note}"]
