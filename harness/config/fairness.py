"""Is a comparison of methods like for like? One line per pair of methods when it is not.

Cells that differ only in their method are compared in the report. When their learning rate,
LoRA rank or step count differ too, and the value of at least one of the two methods comes from
no setting of its own (the registry's [methods.NAME] table, the experiment's NAME sub-tables,
or those of the method it inherits from), the difference is an accident of where defaults live,
not a choice: the plan says so. Differences both methods were given by name (the study's own
learning rates for full fine-tuning and LoRA) are choices and pass without a word. Methods
that bring their own training loop (`train`, as `base` and `checkpoint` do) are left out.
"""

from __future__ import annotations

from typing import Any

from harness.config.matrix import method_lineage
from harness.plugins import Plugins
from harness.protocols import OwnTraining
from harness.specs import CellSpec

COMPARED = {"lr": "lr", "lora_rank": "rank", "max_steps": "steps"}


def named_settings(
    stage2: dict[str, Any],
    methods: dict[str, dict[str, Any]],
    lineage: list[str],
    groups: list[str],
) -> set[str]:
    """TrainSpec fields set by name for a method: in [methods.M] or an experiment sub-table of M,
    for M the method or one it inherits from."""
    named = {key for name in lineage for key in methods.get(name, {})}
    return named | _in_method_tables(stage2, [*groups, *lineage], set(lineage))


def _in_method_tables(table: dict[str, Any], keys: list[str], methods: set[str]) -> set[str]:
    found: set[str] = set()
    for i, key in enumerate(keys):
        sub = table.get(key)
        if not isinstance(sub, dict) or key == "quantization":
            continue
        if key in methods:
            found |= {k for k, v in sub.items() if not isinstance(v, dict) or k == "quantization"}
        found |= _in_method_tables(sub, keys[i + 1 :], methods)
    return found


def comparison_warnings(
    cells: list[CellSpec],
    stage2: dict[str, Any],
    methods: dict[str, dict[str, Any]],
    plugins: Plugins,
) -> list[str]:
    """One line per pair of methods whose otherwise equal cells train differently by accident."""
    named: dict[tuple[str, str], set[str]] = {}
    roots: dict[str, str] = {}  # method -> the method it inherits from in the end (or itself)
    groups: dict[tuple, list[CellSpec]] = {}
    for cell in cells:
        method = cell.stage2.method
        if isinstance(plugins.backend(method), OwnTraining):
            continue  # its own loop (base, checkpoint: none at all) reads what settings it likes
        size = cell.model.size
        size_groups = (["tiny"] if size.tiny is not None else []) + [size.name]
        if (method, size.name) not in named:
            lineage = method_lineage(method, plugins)
            roots[method] = lineage[0]
            named[(method, size.name)] = named_settings(stage2, methods, lineage, size_groups)
        others = tuple(sorted((k, repr(v)) for k, v in cell.axes.items() if k != "method"))
        groups.setdefault(others, []).append(cell)

    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for group in groups.values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                _compare(a, b, named, pairs)
    return [_line(pair, found, roots) for pair, found in pairs.items()]


def _compare(
    a: CellSpec,
    b: CellSpec,
    named: dict[tuple[str, str], set[str]],
    pairs: dict[tuple[str, str], dict[str, Any]],
) -> None:
    ma, mb = a.stage2.method, b.stage2.method
    if ma == mb:
        return
    size = a.model.size.name
    for field, label in COMPARED.items():
        va, vb = getattr(a.stage2, field), getattr(b.stage2, field)
        if va == vb or (field == "lora_rank" and (va is None or vb is None)):
            continue
        unnamed = [m for m in (ma, mb) if field not in named[(m, size)]]
        if not unnamed:
            continue  # both were given their value by name: a choice, not an accident
        found = pairs.setdefault((ma, mb), {"diffs": {}, "unnamed": [], "cells": set()})
        found["diffs"].setdefault(label, (va, vb))
        found["unnamed"] += [m for m in unnamed if m not in found["unnamed"]]
        found["cells"] |= {a.id, b.id}


def _line(pair: tuple[str, str], found: dict[str, Any], roots: dict[str, str]) -> str:
    a, b = pair
    diffs = ", ".join(
        f"{label} ({_text(va)} vs {_text(vb)})" for label, (va, vb) in found["diffs"].items()
    )
    unnamed = found["unnamed"]
    what = " or ".join(found["diffs"])
    if len(unnamed) == 1:
        lone = unnamed[0]
        other = roots[b if lone == a else a]
        why = f"{lone} has no {what} of its own"
        fix = f'declare `inherits = "{other}"` on the {lone} backend, or set {what}'
    else:
        why, fix = f"neither has a {what} of its own", f"set {what}"
    return (
        f"{a} and {b} differ in {diffs} in {len(found['cells'])} cells: {why}; "
        f"{fix} for both in the experiment's stage2 table"
    )


def _text(value: Any) -> str:
    return "none" if value is None else f"{value:g}"


def plan_warnings(plan: Any, plugins: Plugins) -> list[str]:
    """The warnings for a built plan: its cells, its experiment's stage2 table, its registry."""
    from pathlib import Path

    from harness.config.registry import load_registry

    registry = load_registry(Path(plan.registry_file) if plan.registry_file else None)
    stage2 = plan.experiment.get("stage2") or {}
    return comparison_warnings(list(plan.cells.values()), stage2, registry.methods, plugins)
