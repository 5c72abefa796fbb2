"""Table 4 (score beside cost), Table 5 (multimodal vs language) and the generic table that
holds whatever the study's layouts do not."""

from __future__ import annotations

from harness.report.entries import Entry, cell_label, method_text, sort_key, varying_axes
from harness.report.layouts import add_failed_column, has, label_axes
from harness.report.table import (
    ReportTable,
    Row,
    Value,
    hours_value,
    params_value,
    provenance_notes,
    score_value,
    text_value,
    usd_value,
)

MULTIMODAL = (("llava-bench", "overall", "LLaVA-Bench", "LB"), ("mm-vet", "total", "MM-Vet", "MMV"))
LANGUAGE = (("vicuna-80", "overall", "Vicuna-80", "V80"), ("mmlu", "micro", "MMLU", "MMLU"))
TABLE5 = MULTIMODAL + LANGUAGE


def stage2_extent(runs: list[Entry]) -> str:
    """What the cost column measures: the steps stage 2 ran, or the study's one planned epoch."""
    steps = sorted({e.stage2_steps for e in runs if e.stage2_steps})
    if not steps:
        return "stage 2, one epoch as planned"
    span = str(steps[0]) if len(steps) == 1 else f"{steps[0]}-{steps[-1]}"
    return f"stage 2, {span} steps"


def table4(runs: list[Entry], paper: list[Entry]) -> ReportTable | None:
    """Per size x method: LLaVA-Bench, stage-2 GPU-hours per node, dollars, trainable params."""
    runs = sorted(
        (e for e in runs if "size" in e.axes and "method" in e.axes and e.axes["method"] != "base"),
        key=sort_key,
    )
    if not any(e.gpu_hours or e.trainable_params or e.usd for e in runs):
        return None
    with_score = any("llava-bench" in e.scores for e in runs)
    others = [a for a in varying_axes(runs) if a not in ("size", "method", "rank")]
    entries = runs + (paper if with_score else [])
    head = ["Size", "Method"] + (["Setting"] if others else [])
    short = ["Size", "Meth"] + (["Set"] if others else [])
    if with_score:
        head, short = head + ["LLaVA-Bench"], short + ["LB"]
    table = ReportTable(
        "table4",
        f"Table 4: performance vs training cost ({stage2_extent(runs)})",
        head + ["GPU-h/node", "Cost", "Trainable"],
        short + ["GPU-h", "$", "Train"],
    )
    for e in entries:
        size = e.label if e.source == "paper" else str(e.axes["size"])
        values = [Value(size, e.axes.get("size")), Value(method_text(e.axes), e.axes.get("method"))]
        if others:
            values.append(Value("-" if e.source == "paper" else cell_label(e, others)))
        if with_score:
            values.append(score_value(e.score("llava-bench", "overall"), e.flags("llava-bench")))
        values += [
            hours_value(e.gpu_hours, e.cost_estimated),
            cost_value(e),
            params_value(e.trainable_params),
        ]
        table.rows.append(Row(values, e.source, e.cell_id))
    if with_score:
        add_failed_column(table, entries, ("llava-bench",))
    table.notes = provenance_notes(entries, ["llava-bench"] if with_score else [])
    table.notes.insert(
        0,
        "GPU-h/node: stage-2 wall hours x GPUs / GPUs per node; cost: the cell's total dollars"
        + (" (paper rows: GPU-h x $13.63)" if table.has_paper_rows else ""),
    )
    table.notes.extend(judge_cost_notes(runs))
    return table


def cost_value(e: Entry) -> Value:
    """The cell's dollars; 'unknown' when its judge has no price (never a judge-free sum)."""
    if e.judge_price_unknown:
        return Value("unknown", None)
    return usd_value(e.usd, e.cost_estimated)


def judge_cost_notes(runs: list[Entry]) -> list[str]:
    """What the cost column leaves out: unpriced judges, answers the judge cache saved."""
    notes = []
    unknown = [e.cell_id or e.label for e in runs if e.judge_price_unknown]
    if unknown:
        notes.append(
            f"cost unknown: the judge snapshot of {len(unknown)} cell(s) has no price in the "
            "registry (add [judges.SNAPSHOT] prices with --registry)"
        )
    saved = sum(e.judge_usd_saved for e in runs)
    if saved > 0:
        notes.append(
            f"judge answers served from the cache: ${saved:,.2f} saved, not counted as spend"
        )
    return notes


def table5(runs: list[Entry], paper: list[Entry]) -> ReportTable | None:
    """Multimodal (LLaVA-Bench, MM-Vet) beside language (Vicuna-80, MMLU); base LLMs included."""
    multimodal = any(b in e.scores for e in runs for b, *_ in MULTIMODAL)
    language = any(b in e.scores for e in runs for b, *_ in LANGUAGE)
    if not (multimodal and language):
        return None
    runs = sorted((e for e in runs if any(b in e.scores for b, *_ in TABLE5)), key=sort_key)
    shown = label_axes(runs)
    entries = runs + paper
    table = ReportTable(
        "table5",
        "Table 5: multimodal vs language capability",
        ["Model", "Data mix"] + [c[2] for c in TABLE5],
        ["Model", "Mix"] + [c[3] for c in TABLE5],
    )
    for e in entries:
        base = e.axes.get("method") == "base"
        label = cell_label(e, shown, skip=("mix",))
        if base and e.source == "run":
            label = f"base LLM {e.axes.get('size', '')}".strip()
        values = [Value(label, e.label), text_value("-" if base else e.axes.get("mix", "-"))]
        values += [score_value(e.score(b, m), e.flags(b)) for b, m, *_ in TABLE5]
        table.rows.append(Row(values, e.source, e.cell_id))
    add_failed_column(table, entries, tuple(b for b, *_ in TABLE5))
    table.notes = provenance_notes(entries, [b for b, *_ in TABLE5])
    return table


def generic(runs: list[Entry], covered: set[str]) -> ReportTable | None:
    """Every benchmark no study layout showed: cells x benchmarks, headline metric each."""
    names: list[str] = []
    for e in sorted(runs, key=sort_key):
        names.extend(b for b in e.scores if b not in covered and b not in names)
    if not names:
        return None
    runs = sorted((e for e in runs if any(b in e.scores for b in names)), key=sort_key)
    primary = {b: next(e.primary.get(b, "") for e in runs if b in e.scores) for b in names}
    shown = label_axes(runs)
    table = ReportTable(
        "generic",
        "Results by cell and benchmark (headline metric)",
        ["Cell"] + [f"{b} ({primary[b]})" if primary[b] else b for b in names],
        ["Cell"] + names,
    )
    for e in runs:
        values = [Value(cell_label(e, shown), e.cell_id)]
        values += [
            score_value(e.score(b, primary[b]), e.flags(b)) if b in e.scores else Value("-", None)
            for b in names
        ]
        table.rows.append(Row(values, e.source, e.cell_id))
    add_failed_column(table, runs, tuple(names))
    table.notes = provenance_notes(runs, names)
    return table


def failed_steps(cells) -> ReportTable | None:
    """Steps that failed, so a missing score is never silently absent."""
    rows = [(c.id, f.get("step", "?"), f.get("error", "")) for c in cells for f in c.failed_steps]
    if not rows:
        return None
    table = ReportTable(
        "failed_steps", "Failed steps", ["Cell", "Step", "Error"], ["Cell", "Step", "Error"]
    )
    for cell_id, step, error in rows:
        first_line = error.strip().splitlines()[0] if error.strip() else ""
        table.rows.append(Row([Value(cell_id), Value(step), Value(first_line)], "run", cell_id))
    return table


__all__ = ["table4", "table5", "generic", "failed_steps", "has"]
