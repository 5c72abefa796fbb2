"""Exports under RUN_DIR/report/: Markdown, CSV, JSON, one self-contained HTML page, and the
plots (PNG + SVG) with the expected axis labels read back from the SVG text."""

from __future__ import annotations

import csv
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _report_fixtures import STUDY_RUN, run_cli

from harness.report import write_report
from harness.report.plots import pareto_frontier

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("export") / "run"
    shutil.copytree(STUDY_RUN, run)
    write_report(run, ["md", "csv", "json", "html"], with_paper=True)
    return run / "report"


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return ["".join(el.itertext()).strip() for el in root.iter(f"{SVG}text")]


@pytest.mark.parametrize(
    "name, labels",
    [
        (
            "score_vs_gpu_hours",
            [
                "GPU-hours per node (stage 2)",
                "LLaVA-Bench overall",
                "Pareto frontier",
                "paper (Lu et al. 2023)",
            ],
        ),
        ("score_vs_size", ["Model size (parameters)", "LLaVA-Bench overall", "13b", "33b"]),
        ("cost_breakdown", ["Cell", "Cost (USD)", "stage1", "stage2", "eval", "judge"]),
    ],
)
def test_plots_have_png_svg_and_axis_labels(exported, name, labels):
    png = exported / "plots" / f"{name}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    texts = svg_texts(exported / "plots" / f"{name}.svg")
    for label in labels:
        assert label in texts, f"{label!r} not among {texts}"


def test_pareto_frontier_keeps_only_undominated_points():
    points = [(5.8, 72.0), (4.79, 71.8), (4.62, 70.3), (13.5, 72.3), (9.17, 72.2), (6.0, 71.0)]
    assert pareto_frontier(points) == [
        (4.62, 70.3),
        (4.79, 71.8),
        (5.8, 72.0),
        (9.17, 72.2),
        (13.5, 72.3),
    ]


def test_markdown_has_every_table_and_labelled_paper_rows(exported):
    md = (exported / "report.md").read_text()
    for title in ("Table 1:", "Table 2:", "Table 3a:", "Table 3b:", "Table 4:", "Table 5:"):
        assert f"## {title}" in md
    assert "| paper: LLaVA-33B | full | - | 72.0 | 5.80 | $79.05 | 33B | - |" in md
    assert "| 33b | qlora-64 | 336px llava beam=1 | 71.0*† |" in md


def test_csv_values_are_clean_numbers_with_flags_apart(exported):
    rows = list(csv.DictReader((exported / "table4.csv").open()))
    qlora = next(r for r in rows if r["Method"] == "qlora-64" and r["source"] == "run")
    assert qlora["LLaVA-Bench"] == "71.0" and qlora["flags"] == "*†"
    assert qlora["GPU-h/node"] == "4.68" and qlora["cell"] == "33b-qlora64-336-llava-b1"
    assert sum(r["source"] == "paper" for r in rows) == 9


def test_a_plugin_benchmarks_every_metric_is_in_its_csv(exported):
    (row,) = csv.DictReader((exported / "benchmark-pope.csv").open())
    got = {k: row[k] for k in ("f1", "acc", "precision", "recall", "yes_ratio")}
    assert got == {"f1": "85.3", "acc": "86.0", "precision": "88.4", "recall": "82.4",
                   "yes_ratio": "46.6"}  # fmt: skip
    assert "adversarial/f1" not in row  # per-category numbers stay in results.json


def test_json_keeps_unrounded_values(exported):
    report = json.loads((exported / "report.json").read_text())
    table2 = next(t for t in report["tables"] if t["key"] == "table2")
    first = table2["rows"][0]
    assert first["values"]["Total"] == pytest.approx((32.1 + 32.4 + 32.7) / 3)
    assert first["text"]["Total"] == "32.4±0.2"


def test_html_is_one_self_contained_page(exported):
    page = (exported / "report.html").read_text()
    # the seven study tables, the plugin benchmark's own table and the failed steps
    assert page.startswith("<!DOCTYPE html>") and page.count("<table>") == 9
    assert "<link" not in page and "<script" not in page and "@import" not in page
    sources = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert sources and all(s.startswith("data:image/") for s in sources)
    assert len(re.findall(r'src="data:image/svg\+xml;base64,', page)) == 3
    assert "url(" not in page  # no fonts or images pulled in through CSS


def test_cli_report_prints_tables_and_writes_formats(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(STUDY_RUN, run)
    code, out, _ = run_cli(["report", str(run), "--width", "120", "--format", "csv"], capsys)
    assert code == 0
    assert "Table 1: LLaVA-Bench" in out and "\x1b[" not in out  # captured: not a TTY
    assert (run / "report" / "table1.csv").is_file()
    code, out, _ = run_cli(["report", str(run), "--json", "--with-paper"], capsys)
    assert code == 0 and json.loads(out)["tables"][0]["key"] == "table1"


def test_cli_report_bad_run_dir_is_one_clear_error(tmp_path, capsys):
    code, _, err = run_cli(["report", str(tmp_path)], capsys)
    assert code == 2 and "results.json" in err and "Traceback" not in err
    (tmp_path / "results.json").write_text("{not json")
    code, _, err = run_cli(["report", str(tmp_path)], capsys)
    assert code == 2 and "not a valid results file" in err
    assert len(err.strip().splitlines()) == 1
