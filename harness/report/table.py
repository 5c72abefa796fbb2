"""A report table independent of how it is drawn: terminal, Markdown, CSV, JSON and HTML all
render this one structure, so every format says the same thing (notes and marks included)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from harness.report.entries import Entry, judge_text, protocol_text

LEGEND = {
    "*": "* harness-own protocol (not the official one)",
    "†": "† judge is not a GPT-4 model",
    "‡": "‡ judging incomplete: items the judge failed on are left out (judge.max_failed_share)",
}


@dataclass
class Value:
    text: str  # as displayed, rounded, with marks
    raw: Any = None  # the number (or string) behind it, unrounded, for CSV/JSON
    marks: str = ""


@dataclass
class Row:
    values: list[Value]
    source: str = "run"  # "run" or "paper"
    cell_id: str | None = None


@dataclass
class ReportTable:
    key: str  # "table1", ..., "generic"
    title: str
    columns: list[str]
    short_columns: list[str]  # used when the terminal is narrow
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def has_paper_rows(self) -> bool:
        return any(row.source == "paper" for row in self.rows)


def score_value(value: float | None, marks: str = "", std: float | None = None) -> Value:
    """Scores use the study's rounding: one decimal, with '±std' when judged more than once."""
    if value is None or not math.isfinite(value):  # a benchmark with nothing scored gives NaN
        return Value("-", None)
    text = f"{value:.1f}"
    if std is not None:
        text += f"±{std:.1f}"
    return Value(text + marks, value, marks)


def hours_value(value: float | None, estimated: bool = False) -> Value:
    """GPU-hours use two decimals; '~' marks the planner's estimates rather than measurements."""
    if value is None:
        return Value("-", None)
    return Value(("~" if estimated else "") + f"{value:.2f}", value, "~" if estimated else "")


def usd_value(value: float | None, estimated: bool = False) -> Value:
    if value is None:
        return Value("-", None)
    prefix = "~" if estimated else ""
    text = f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
    return Value(f"{prefix}${text}", value, prefix)


def params_value(count: int | None) -> Value:
    """Parameter counts the way the study writes them (0.26B, 33B), and M/K for tiny models."""
    if not count:
        return Value("-", None)
    if count >= 10_000_000:
        number, unit = count / 1e9, "B"
    elif count >= 10_000:
        number, unit = count / 1e6, "M"
    else:
        return Value(str(count), count)
    text = f"{number:.2f}".rstrip("0").rstrip(".")
    return Value(text + unit, count)


def text_value(text: Any) -> Value:
    return Value("-" if text is None else str(text), text)


def _failures_note(bench: str, entries: list[Entry]) -> str | None:
    """One line per benchmark and table for every cell's excluded items, reasons summed."""
    failed = [(e.cell_id, e.n_failed.get(bench, 0)) for e in entries if e.n_failed.get(bench)]
    if not failed:
        return None
    reasons: dict[str, int] = {}
    for entry in entries:
        for why, n in entry.failures.get(bench, {}).items():
            reasons[why] = reasons.get(why, 0) + n
    why = ", ".join(f"{k} {n}" for k, n in sorted(reasons.items()))
    why = f" ({why})" if why else ""
    if len(failed) == 1:
        ((cell, n),) = failed
        return f"{bench}: {n} failed item(s) excluded in {cell}{why}"
    cells = ", ".join(f"{n} in {cell}" for cell, n in failed)
    return f"{bench}: failed items excluded in {len(failed)} cells: {cells}{why}"


def provenance_notes(entries: list[Entry], benchmarks: list[str]) -> list[str]:
    """Which judge and protocol produced the run's numbers, failures, and the marks' meaning."""
    notes: list[str] = []
    runs = [e for e in entries if e.source == "run"]
    used: set[str] = set()
    for bench in benchmarks:
        having = [e for e in runs if bench in e.scores]
        if not having:
            continue
        groups: dict[str, int] = {}
        for e in having:
            protocol = e.protocols.get(bench, {})
            kind = "official" if protocol.get("official") else "harness-own"
            judge = judge_text(e.judges.get(bench))
            text = (f"judge {judge}" if judge != "none" else "no judge") + (
                f", protocol {protocol_text(protocol, protocol.get('version'))} ({kind})"
            )
            groups[text] = groups.get(text, 0) + 1
        parts = [
            text if len(groups) == 1 else f"{text} [{n} cell{'s' if n > 1 else ''}]"
            for text, n in groups.items()
        ]
        notes.append(f"{bench}: " + "; ".join(parts))
        used |= {mark for e in having for mark in e.flags(bench)}
        failure_note = _failures_note(bench, having)
        if failure_note:
            notes.append(failure_note)
        # what a benchmark says of its own result (e.g. a test split written for submission)
        said = dict.fromkeys(
            str(e.extra[bench]["note"]) for e in having if "note" in e.extra.get(bench, {})
        )
        notes += [f"{bench}: {note}" for note in said]
    if used:
        notes.append("   ".join(text for mark, text in LEGEND.items() if mark in used))
    if any(e.cost_estimated for e in runs):
        notes.append("~ cost is the planner's estimate, not a measurement")
    paper_judges = sorted(
        {
            f"{j.get('snapshot')} ({bench})"
            for e in entries
            if e.source == "paper"
            for bench, j in e.judges.items()
            if bench in benchmarks
        }
    )
    if any(e.source == "paper" for e in entries):
        judged = f", judged by {', '.join(paper_judges)}" if paper_judges else ""
        notes.append(
            f"paper: rows are the study's published numbers (Lu et al. 2023){judged}; "
            "not produced by this run"
        )
    return notes
