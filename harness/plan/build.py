"""From CLI flags to a plan: the experiment, its cells, its steps.

Flags are applied over the experiment (registry entry or --config file) in one place, so `run`,
`plan` and `eval` agree exactly on what a command means.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.config.matrix import expand, merged_axes, parse_matrix
from harness.config.registry import Registry, deep_merge, load_registry
from harness.config.tables import check_tables
from harness.config.validation import describe_error, read_toml
from harness.errors import UserError
from harness.plan.dag import build_dag
from harness.plan.plan_file import Plan
from harness.plan.preflight import (
    check_folders,
    check_matrix_size,
    check_sources,
    check_step_count,
    check_train_sources,
)
from harness.plugins import Plugins
from harness.specs import DataSource, ExperimentSpec


@dataclass
class Options:
    """The flags shared by run, plan and eval."""

    matrix: list[str] = field(default_factory=list)
    config: Path | None = None
    experiment: str | None = None
    benchmarks: str | None = None
    judge: str | None = None
    data: list[str] = field(default_factory=list)
    train_data: list[str] = field(default_factory=list)
    out: Path | None = None
    store: Path | None = None
    executor: str | None = None
    registry: Path | None = None
    assets_mirror: Path | None = None
    budget_usd: float | None = None
    max_parallel: int | None = None


def _read_config(path: Path) -> dict[str, Any]:
    return read_toml(path, "config file")


def _config_experiment(path: Path, registry: Registry) -> ExperimentSpec:
    """A config file; `extends = "NAME"` starts from a registry experiment and merges the file
    over it table by table (a stage-2 value set here keeps the rest of that table)."""
    raw = _read_config(path)
    base = raw.pop("extends", None)
    if base is not None:
        if not isinstance(base, str):
            raise UserError(f"config {path}: extends must name an experiment, got {base!r}")
        registry.experiment(base)  # known and valid, or one line naming it
        raw = deep_merge(registry.experiments[base], raw)
    raw.setdefault("name", Path(path).stem)
    try:
        return ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise UserError(f"config {path}: {describe_error(exc, ExperimentSpec)}") from None


def _data_flags(
    entries: list[str], data: dict[str, str], flag: str = "--data", what: str = "BENCHMARK"
) -> dict[str, str]:
    """`NAME=SOURCE` flags over the config's table; each bad one named in one line."""
    given: set[str] = set()
    for entry in entries:
        name, sep, source = entry.partition("=")
        name, source = name.strip(), source.strip()
        if not sep or not name or not source:
            raise UserError(f"malformed {flag} {entry!r}: expected {what}=PATH|hub:ID|synthetic")
        if name in given:
            raise UserError(f"{flag} {name} is given twice: give one source per {what.lower()}")
        given.add(name)
        try:
            DataSource.parse(source)
        except UserError as exc:
            raise UserError(f"{flag} {entry}: {exc}") from None
        data[name] = source
    return data


def _flag_updates(opts: Options, body: dict[str, Any]) -> dict[str, Any]:
    """The experiment's fields with the flags over them; each bad flag named in one line."""
    if opts.benchmarks is not None:
        names = [b.strip() for b in opts.benchmarks.split(",")]
        if not any(names):
            raise UserError(f"--benchmarks {opts.benchmarks!r} names no benchmark")
        if "" in names:
            raise UserError(f"--benchmarks {opts.benchmarks!r} has an empty name")
        body["benchmarks"] = names
    if opts.judge is not None:
        name, _, snapshot = opts.judge.partition(":")
        if not name.strip():
            raise UserError(f"--judge {opts.judge!r}: expected NAME[:SNAPSHOT]")
        body["judge"] = {**body["judge"], "name": name.strip(), "snapshot": snapshot or None}
    if opts.data:
        body["data"] = _data_flags(opts.data, dict(body["data"]))
    if opts.train_data:
        body["train_data"] = _data_flags(
            opts.train_data, dict(body["train_data"]), flag="--train-data", what="ROLE"
        )
    if opts.budget_usd is not None:
        if not (math.isfinite(opts.budget_usd) and opts.budget_usd >= 0):
            raise UserError(f"--budget-usd {opts.budget_usd}: must be a number >= 0")
        body["budget_usd"] = opts.budget_usd
    if opts.max_parallel is not None:
        if opts.max_parallel < 1:
            raise UserError(f"--max-parallel {opts.max_parallel}: must be >= 1")
        body["executor"] = {**body["executor"], "max_parallel": opts.max_parallel}
    if opts.executor is not None:
        body["executor"] = {**body["executor"], "name": opts.executor}
    return body


def build_experiment(opts: Options, registry: Registry) -> ExperimentSpec:
    if opts.config is not None and opts.experiment is not None:
        raise UserError("--config and --experiment both name the experiment: give one of them")
    if opts.config is not None:
        exp = _config_experiment(opts.config, registry)
    else:
        exp = registry.experiment(opts.experiment or "default")
    body = _flag_updates(opts, exp.model_dump())
    try:
        return ExperimentSpec.model_validate(body)
    except ValidationError as exc:
        raise UserError(f"flags: {describe_error(exc, ExperimentSpec)}") from None


def _source_label(opts: Options, exp: ExperimentSpec) -> str:
    return f"config {opts.config}" if opts.config is not None else f"experiment {exp.name!r}"


def build_plan(opts: Options, plugins: Plugins) -> Plan:
    registry = load_registry(opts.registry)
    exp = build_experiment(opts, registry)
    try:
        check_tables(exp, registry, plugins)
    except UserError as exc:
        raise UserError(f"{_source_label(opts, exp)}: {exc}") from None
    plugins.executor(exp.executor.name)
    axes = parse_matrix(opts.matrix)
    all_axes = merged_axes(exp, axes)
    if opts.judge is not None and "judge" in all_axes:
        values = ",".join(str(v) for v in all_axes["judge"])
        raise UserError(
            f"--judge {opts.judge} and the matrix axis judge={values} both choose the judge: "
            "give one of them"
        )
    for bench in exp.data:
        plugins.benchmark(bench)
    check_matrix_size(all_axes)
    cells = expand(exp, registry, plugins, axes)
    if not cells:
        raise UserError("the matrix has no cells")
    check_step_count(cells, plugins)
    check_train_sources(cells, exp.train_data)
    mirror = opts.assets_mirror or os.environ.get("HARNESS_ASSETS_MIRROR") or None
    if mirror is not None and not Path(mirror).is_dir():
        raise UserError(f"assets mirror {mirror} is not a folder")
    run_dir = Path(opts.out or Path("runs") / exp.name).resolve()
    store = Path(opts.store).resolve() if opts.store else run_dir / "store"
    check_folders(run_dir, store)
    from harness.config.assets import plan_assets

    assets = plan_assets(cells, plugins, Path(mirror) if mirror else None, opts.registry)
    experiment = exp.model_dump(mode="json")
    if axes:
        experiment["matrix"] = axes
    plan = Plan(
        run_dir=run_dir,
        store_root=store,
        experiment=experiment,
        cells={c.id: c for c in cells},
        steps=[],
        registry_file=str(Path(opts.registry).resolve()) if opts.registry else None,
        assets_mirror=str(Path(mirror).resolve()) if mirror else None,
        assets=assets,
    )
    check_sources(plan, plugins)  # before the DAG, which hashes local data
    plan.steps = build_dag(cells, plugins, assets)
    return plan
