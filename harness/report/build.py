"""Choose and build the tables a run's results support, in the study's order."""

from __future__ import annotations

from harness.report import layouts, layouts_cost, layouts_plugins
from harness.report.entries import from_cell
from harness.report.paper import paper_entries
from harness.report.table import ReportTable
from harness.results import RunResults

# Which benchmarks each study layout shows in full; the rest go to the generic table.
COVERS = {
    "table1": {"llava-bench"},
    "table2": {"mm-vet"},
    "table3b": {"mmbench"},
    "table5": {"vicuna-80", "mmlu"},
}


def build_tables(results: RunResults, *, with_paper: bool = False) -> list[ReportTable]:
    runs = [from_cell(cell) for cell in results.cells]
    builders = {
        "table1": layouts.table1,
        "table2": layouts.table2,
        "table3a": layouts.table3a,
        "table3b": layouts.table3b,
        "table4": layouts_cost.table4,
        "table5": layouts_cost.table5,
    }
    tables: list[ReportTable] = []
    covered: set[str] = set()
    for key, builder in builders.items():
        table = builder(runs, paper_entries(key) if with_paper else [])
        if table is not None:
            tables.append(table)
            covered |= COVERS.get(key, set())
    generic = layouts_cost.generic(runs, covered)
    if generic is not None:
        tables.append(generic)
    tables += layouts_plugins.plugin_tables(results.cells, runs, covered)
    failed = layouts_cost.failed_steps(results.cells)
    if failed is not None:
        tables.append(failed)
    return tables


def run_summary(results: RunResults) -> dict[str, str]:
    """The lines that head every report: what ran, where, with which code."""
    experiment = results.experiment
    hardware = results.hardware
    summary = {
        "experiment": str(experiment.get("name", "custom")),
        "cells": str(len(results.cells)),
        "created": results.created,
        "harness": results.harness_version + (f" ({results.git})" if results.git else ""),
    }
    if hardware:
        summary["hardware"] = str(hardware.get("name", hardware))
    return summary
