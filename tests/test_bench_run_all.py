"""bench/run_all.py: finding the RATIO line, choosing scripts, goals and RESULTS.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run_all():
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run_all"] = module
    spec.loader.exec_module(module)
    return module


def test_parse_ratio_takes_the_last_ratio_line():
    run_all = _run_all()
    output = "table\nRATIO first 1.0\nmore\nRATIO generation 3.41\n\n"
    assert run_all.parse_ratio(output) == ("generation", 3.41)
    assert run_all.parse_ratio("no ratio here\nRATIO broken x") is None
    assert run_all.parse_ratio("") is None


def test_scripts_are_those_printing_a_ratio():
    names = [p.name for p in _run_all().ratio_scripts()]
    assert "run_all.py" not in names
    assert "report_screenshot.py" not in names
    assert {"mmlu_vs_lm_eval.py", "generation.py", "cli_startup.py"} <= set(names)


def test_only_a_printed_ratio_line_selects_a_script(tmp_path, monkeypatch):
    run_all = _run_all()
    (tmp_path / "mentions.py").write_text('"""Ends with `STUDY x` (not a RATIO line)."""\n')
    (tmp_path / "prints.py").write_text('print(f"RATIO prints {2.0:.2f}")\n')
    (tmp_path / "_helper.py").write_text('print("RATIO helper 1")\n')
    monkeypatch.setattr(run_all, "BENCH", tmp_path)
    assert [p.name for p in run_all.ratio_scripts()] == ["prints.py"]


def test_tables_leave_out_training_logs_and_keep_stderr_of_failures():
    run_all = _run_all()
    log = "[2026-11-26 23:31:24,810] [WARNING] [real_accelerator.py:213:get_accelerator] CPU\n"
    text = log + "{'loss': '4.5'}\n\nmethod  ratio\nRATIO t 1"
    ok = run_all.Outcome("t.py", 1.0, text, 0, "t", 1.0)
    assert ok.table() == "method  ratio\nRATIO t 1"
    failed = run_all.Outcome(
        "m.py",
        1.0,
        "a table\n",
        1,
        errors="Traceback\nValueError: bad\nLoading: 100%|█| 30/30 [00:00<00:00, 22489.57it/s]\n",
    )
    assert failed.table().endswith("ValueError: bad") and "a table" in failed.table()


def test_verdicts_follow_the_goals():
    run_all = _run_all()
    make = run_all.Outcome
    assert make("g.py", 1.0, "", 0, "generation", 3.2).verdict == "pass"
    assert make("g.py", 1.0, "", 0, "generation", 2.9).verdict == "FAIL"
    assert make("c.py", 1.0, "", 0, "cli_startup", 0.31).verdict == "pass"
    assert make("c.py", 1.0, "", 0, "cli_startup", 0.5).verdict == "FAIL"
    assert make("j.py", 1.0, "", 0, "judge_throughput", 12.0).verdict == "no goal"
    assert make("x.py", 1.0, "Traceback", 1).verdict == "ERROR"


def test_results_file_lists_machine_ratios_and_tables(tmp_path):
    run_all = _run_all()
    outcomes = [
        run_all.Outcome(
            "generation.py", 12.0, "a table\nRATIO generation 3.5", 0, "generation", 3.5
        )
    ]
    out = tmp_path / "RESULTS.md"
    run_all.write_results(out, outcomes, run_all.machine(), False, None)
    text = out.read_text()
    assert "- cores: " in text and "- torch: " in text and "- CPU: " in text
    assert "| generation.py | generation | 3.5 | >= 3x | pass | 12 |" in text
    assert "a table" in text


def test_a_script_is_run_and_its_ratio_read(tmp_path):
    run_all = _run_all()
    script = tmp_path / "fake.py"
    script.write_text(
        "import sys\nprint('x' if '--quick' in sys.argv else 'y')\nprint('RATIO fake 2.5')\n"
    )
    outcome = run_all.run_script(script, quick=True)
    assert (outcome.name, outcome.value, outcome.returncode) == ("fake", 2.5, 0)
    assert outcome.output.startswith("x")


def test_sections_recorded_earlier_survive_and_rerun_ones_are_replaced(tmp_path):
    run_all = _run_all()
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Benchmark results\n\n## Machine\n\n- cores: 64\n\n## Ratios\n\nold\n\n"
        "## GPU check (H100, 2026-11-27)\n\n| method | tokens/s |\n| full | 9605 |\n\n"
        "## cli_startup.py\n\nold table\n\n## tiny_study.py\n\nstudy table\n"
    )
    outcome = run_all.Outcome("cli_startup.py", 1.0, "RATIO cli_startup 0.2", 0, "cli_startup", 0.2)
    run_all.write_results(results, [outcome], {"cores": 2}, quick=False, gpu=None)
    text = results.read_text()
    assert text.endswith(
        "## GPU check (H100, 2026-11-27)\n\n| method | tokens/s |\n| full | 9605 |\n\n"
        "## tiny_study.py\n\nstudy table\n"
    )
    assert "old table" not in text and "cores: 64" not in text
    assert text.count("## cli_startup.py") == 1 and text.count("## Ratios") == 1
