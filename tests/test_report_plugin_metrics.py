"""A plugin benchmark's every metric reaches the report: its declared columns, in a table of its
own, in the terminal and in every export (CSV, Markdown, JSON, HTML)."""

from __future__ import annotations

import csv
import io
import json
import sys
from types import ModuleType

import _core_fakes as fakes
import pytest
from _core_fakes import FakeBench

from harness.hookspecs import hookimpl
from harness.plan.build import Options
from harness.plugins import load_plugins, reset_plugins
from harness.report import render_text, write_report
from harness.report.exports import load_results
from harness.results import BenchmarkResult
from harness.run.orchestrate import run_command


class YesNoScores(FakeBench):
    """A POPE-like yes/no benchmark: accuracy is its headline, with four more numbers."""

    def score(self, items, outputs, judgments, ctx):
        base = super().score(items, outputs, judgments, ctx).metrics["overall"]
        metrics = {"acc": base, "precision": 81.5, "recall": 64.25, "f1": 71.85, "yes_ratio": 39.0}
        metrics["adversarial/acc"] = 70.0  # per-category numbers stay in results.json
        return BenchmarkResult(
            benchmark=self.name,
            version=self.version,
            primary="acc",
            metrics=metrics,
            n_items=len(items),
            protocol=self.protocol(ctx),
        )


class YesNoBench(YesNoScores):
    """It declares its report columns."""

    name = "yesno"
    report_columns = {
        "acc": "Accuracy",
        "precision": "Precision",
        "recall": "Recall",
        "f1": "F1",
        "yes_ratio": "Yes %",
    }


class PlainBench(YesNoScores):
    """The same numbers without a declaration: its top-level metrics are its columns."""

    name = "plainbench"


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    plugin = ModuleType("yesno_plugin")

    @hookimpl
    def register_benchmarks(register):
        register(YesNoBench())
        register(PlainBench())

    plugin.register_benchmarks = register_benchmarks
    monkeypatch.setitem(sys.modules, "yesno_plugin", plugin)
    reset_plugins(load_plugins(extra=[fakes, plugin]))
    (tmp_path / "registry.toml").write_text(fakes.REGISTRY)
    (tmp_path / "exp.toml").write_text(
        fakes.EXPERIMENT.replace('["fakebench"]', '["yesno", "plainbench"]')
    )
    monkeypatch.setenv("FAKE_LEDGER", str(tmp_path / "ledger"))
    opts = Options(
        matrix=["methods=fake"],
        config=tmp_path / "exp.toml",
        registry=tmp_path / "registry.toml",
        out=tmp_path / "run",
    )
    assert run_command(opts) == 0
    yield tmp_path / "run"
    reset_plugins(None)


def test_declared_columns_get_a_table_in_every_format(run_dir):
    results = load_results(run_dir)
    cell = results.cells[0].benchmarks["yesno"]
    assert list(cell.columns.values()) == ["Accuracy", "Precision", "Recall", "F1", "Yes %"]
    text = render_text(results, width=120)
    title = "yesno: every metric it reports, by cell"
    assert title in text
    block = text[text.index(title) :].splitlines()
    header = next(line for line in block if "Accuracy" in line)
    assert [h.strip() for h in header.strip("|").split("|")][1:6] == list(cell.columns.values())
    row = next(line for line in block if "fake-a" in line)
    assert "81.5" in row and "64.2" in row and "71.8" in row and "39.0" in row

    paths = {p.name: p for p in write_report(run_dir, ["csv", "md", "json", "html"])}
    rows = list(csv.reader(io.StringIO(paths["benchmark-yesno.csv"].read_text())))
    assert rows[0][:6] == ["Cell", "Accuracy", "Precision", "Recall", "F1", "Yes %"]
    assert [r[2:6] for r in rows[1:]] == [["81.5", "64.2", "71.8", "39.0"]] * 2
    assert "| Cell | Accuracy | Precision | Recall | F1 | Yes % |" in paths["report.md"].read_text()
    keys = [t["key"] for t in json.loads(paths["report.json"].read_text())["tables"]]
    assert "benchmark-yesno" in keys
    assert "<th>Yes %</th>" in paths["report.html"].read_text()


def test_without_a_declaration_the_top_level_metrics_are_the_columns(run_dir):
    text = render_text(load_results(run_dir), width=140)
    block = text[text.index("plainbench: every metric it reports") :].splitlines()
    header = next(line for line in block if "Cell" in line)
    assert [h.strip() for h in header.strip("|").split("|")][1:6] == [
        "acc",
        "precision",
        "recall",
        "f1",
        "yes_ratio",
    ]
    assert "adversarial/acc" not in header
