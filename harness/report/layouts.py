"""The study's table layouts (Tables 1, 2, 3a, 3b) built from entries.

Each builder returns None when the run lacks what the table needs, so a report shows only
the tables that say something about this run.
"""

from __future__ import annotations

from harness.report.entries import Entry, cell_label, size_value, sort_key, varying_axes
from harness.report.table import ReportTable, Row, Value, provenance_notes, score_value

LLAVA_CATEGORIES = (
    ("complex", "Reasoning", "Reas"),
    ("conv", "Conversation", "Conv"),
    ("detail", "Detail", "Det"),
    ("overall", "Overall", "All"),
)
MMVET_CAPABILITIES = (
    ("rec", "Rec", "Rec"),
    ("ocr", "OCR", "OCR"),
    ("know", "Knowledge", "Know"),
    ("gen", "Generation", "Gen"),
    ("spat", "Spatial", "Spat"),
    ("math", "Math", "Math"),
    ("total", "Total", "Total"),
)
MMBENCH_SKILLS = ("overall", "LR", "AR", "RR", "FP-S", "FP-C", "CP")


def has(entries: list[Entry], benchmark: str) -> list[Entry]:
    return sorted((e for e in entries if benchmark in e.scores), key=sort_key)


def label_axes(runs: list[Entry]) -> list[str]:
    """The axes that tell the run's rows apart (size and method when nothing varies)."""
    shown = varying_axes(runs)
    if shown:
        return shown
    return [a for a in ("size", "method") if any(a in e.axes for e in runs)]


def failed_value(entry: Entry, benchmarks: tuple[str, ...]) -> Value:
    count = sum(entry.n_failed.get(b, 0) for b in benchmarks)
    return Value(str(count) if entry.source == "run" else "-", count)


def add_failed_column(table: ReportTable, entries: list[Entry], benchmarks: tuple[str, ...]):
    """A 'Failed' column, only when some row had items excluded from its score."""
    if not any(sum(e.n_failed.get(b, 0) for b in benchmarks) for e in entries):
        return
    table.columns.append("Failed")
    table.short_columns.append("Fail")
    for row, entry in zip(table.rows, entries, strict=True):
        row.values.append(failed_value(entry, benchmarks))


def _row(entry: Entry, values: list[Value]) -> Row:
    return Row(values=values, source=entry.source, cell_id=entry.cell_id)


def table1(runs: list[Entry], paper: list[Entry]) -> ReportTable | None:
    """LLaVA-Bench per category and overall, one row per model and beam size."""
    runs = has(runs, "llava-bench")
    if not runs:
        return None
    shown = label_axes(runs)
    entries = runs + paper
    table = ReportTable(
        "table1",
        "Table 1: LLaVA-Bench (In-the-Wild) per category, by beam size",
        ["Model", "Beam"] + [c[1] for c in LLAVA_CATEGORIES],
        ["Model", "Beam"] + [c[2] for c in LLAVA_CATEGORIES],
    )
    for e in entries:
        marks = e.flags("llava-bench")
        beam = e.axes.get("beam", 1 if e.source == "run" else None)
        values = [
            Value(cell_label(e, shown, skip=("beam",)), e.label),
            Value(str(beam or "-"), beam),
        ]
        values += [score_value(e.score("llava-bench", m), marks) for m, _, _ in LLAVA_CATEGORIES]
        table.rows.append(_row(e, values))
    add_failed_column(table, entries, ("llava-bench",))
    table.notes = provenance_notes(entries, ["llava-bench"])
    return table


def table2(runs: list[Entry], paper: list[Entry]) -> ReportTable | None:
    """MM-Vet per capability; the total as mean±std over judging runs."""
    runs = has(runs, "mm-vet")
    if not runs:
        return None
    shown = label_axes(runs)
    entries = runs + paper
    table = ReportTable(
        "table2",
        "Table 2: MM-Vet per capability (total: mean±std over judging runs)",
        ["Model"] + [c[1] for c in MMVET_CAPABILITIES],
        ["Model"] + [c[2] for c in MMVET_CAPABILITIES],
    )
    for e in entries:
        marks = e.flags("mm-vet")
        values = [Value(cell_label(e, shown), e.label)]
        for metric, _, _ in MMVET_CAPABILITIES:
            std = e.std.get("mm-vet", {}).get(metric) if metric == "total" else None
            values.append(score_value(e.score("mm-vet", metric), marks, std))
        table.rows.append(_row(e, values))
    add_failed_column(table, entries, ("mm-vet",))
    table.notes = provenance_notes(entries, ["mm-vet"])
    return table


def _res_text(res) -> str:
    return f"{res}x{res}" if res is not None else "-"


def table3a(runs: list[Entry], paper: list[Entry]) -> ReportTable | None:
    """LLaVA-Bench overall pivoted: rows image size x data mix (x other axes), columns sizes."""
    runs = has(runs, "llava-bench")
    if not runs or not any("size" in e.axes for e in runs):
        return None
    if not any("res" in e.axes or "mix" in e.axes for e in runs):
        return None
    combos = {(e.axes.get("size"), e.axes.get("res"), e.axes.get("mix")) for e in runs}
    if len(combos) < 2:
        return None
    others = [a for a in varying_axes(runs) if a not in ("size", "res", "mix")]
    entries = runs + paper
    sizes = sorted({str(e.axes.get("size")) for e in entries}, key=lambda s: (size_value(s), s))
    pivot: dict[tuple, dict[str, Entry]] = {}
    for e in entries:
        setting = "paper" if e.source == "paper" else cell_label(e, others) if others else ""
        key = (e.source != "run", e.axes.get("res") or 0, str(e.axes.get("mix", "-")), setting)
        pivot.setdefault(key, {})[str(e.axes.get("size"))] = e
    with_setting = bool(others) or bool(paper)
    head = ["Image size", "Data mix"] + (["Setting"] if with_setting else [])
    table = ReportTable(
        "table3a",
        "Table 3a: LLaVA-Bench overall by model size x image size x data mix",
        head + sizes,
        ["Res", "Mix"] + (["Set"] if with_setting else []) + sizes,
    )
    for key in sorted(pivot):
        row_entries = pivot[key]
        first = next(iter(row_entries.values()))
        values = [
            Value(_res_text(first.axes.get("res")), first.axes.get("res")),
            Value(key[2], key[2]),
        ] + ([Value(key[3], key[3])] if with_setting else [])
        for size in sizes:
            e = row_entries.get(size)
            values.append(
                score_value(e.score("llava-bench", "overall"), e.flags("llava-bench"))
                if e
                else Value("", None)
            )
        table.rows.append(Row(values, first.source, None))
    table.notes = provenance_notes(entries, ["llava-bench"])
    return table


def table3b(runs: list[Entry], paper: list[Entry]) -> ReportTable | None:
    """MMBench overall and its six L-2 skills."""
    runs = has(runs, "mmbench")
    if not runs:
        return None
    shown = label_axes(runs)
    entries = runs + paper
    table = ReportTable(
        "table3b",
        "Table 3b: MMBench overall and the six L-2 skills",
        ["Checkpoint", "Image size", "Data mix"]
        + [m.title() if m == "overall" else m for m in MMBENCH_SKILLS],
        ["Model", "Res", "Mix"] + ["All" if m == "overall" else m for m in MMBENCH_SKILLS],
    )
    for e in entries:
        marks = e.flags("mmbench")
        values = [
            Value(cell_label(e, shown, skip=("res", "mix")), e.label),
            Value(_res_text(e.axes.get("res")), e.axes.get("res")),
            Value(str(e.axes.get("mix", "-")), e.axes.get("mix")),
        ]
        values += [score_value(e.score("mmbench", m), marks) for m in MMBENCH_SKILLS]
        table.rows.append(_row(e, values))
    add_failed_column(table, entries, ("mmbench",))
    table.notes = provenance_notes(entries, ["mmbench"])
    add_unmatched_column(table, entries)
    return table


def unmatched_questions(entry: Entry) -> float | None:
    """MMBench questions counted wrong because an answer matched no option (mean over runs)."""
    counts = entry.extra.get("mmbench", {}).get("unmatched_questions")
    if entry.source != "run" or not isinstance(counts, list) or not counts:
        return None
    return sum(counts) / len(counts)


def add_unmatched_column(table: ReportTable, entries: list[Entry]) -> None:
    """An 'Unmatched' column beside the score, only when some row had such questions."""
    counts = [unmatched_questions(e) for e in entries]
    if not any(counts):
        return
    table.columns.append("Unmatched")
    table.short_columns.append("Unm")
    for row, count in zip(table.rows, counts, strict=True):
        text = "-" if count is None else f"{count:g}"
        row.values.append(Value(text, count))
    table.notes.append(
        "Unmatched: questions wrong only because an answer matched no option (in some "
        "rotation), counted wrong as upstream's CircularEval does (results.json's "
        "diagnostic/overall_matched_only leaves them out)"
    )
