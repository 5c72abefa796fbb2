"""From CLI flags to a plan: the experiment, its cells, its steps.

Flags are applied over the experiment (registry entry or --config file) in one place, so `run`,
`plan` and `eval` agree exactly on what a command means.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.dag import build_dag
from harness.errors import UserError
from harness.matrix import expand, parse_matrix
from harness.plan import Plan
from harness.plugins import Plugins
from harness.registry import Registry, load_registry
from harness.specs import ExperimentSpec


@dataclass
class Options:
    """The flags shared by run, plan and eval."""

    matrix: list[str] = field(default_factory=list)
    config: Path | None = None
    experiment: str | None = None
    benchmarks: str | None = None
    judge: str | None = None
    data: list[str] = field(default_factory=list)
    out: Path | None = None
    store: Path | None = None
    executor: str | None = None
    registry: Path | None = None
    assets_mirror: Path | None = None
    budget_usd: float | None = None
    max_parallel: int | None = None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None


def build_experiment(opts: Options, registry: Registry) -> ExperimentSpec:
    if opts.config is not None:
        raw = _read_config(opts.config)
        base = raw.pop("extends", None)
        if base is not None:
            raw = {**registry.experiment(base).model_dump(exclude={"name"}), **raw}
        raw.setdefault("name", Path(opts.config).stem)
        try:
            exp = ExperimentSpec.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise UserError(f"config {opts.config}: {where}: {err['msg']}") from None
    else:
        exp = registry.experiment(opts.experiment or "default")
    update: dict[str, Any] = {}
    if opts.benchmarks:
        update["benchmarks"] = [b.strip() for b in opts.benchmarks.split(",") if b.strip()]
    if opts.judge:
        name, _, snapshot = opts.judge.partition(":")
        update["judge"] = exp.judge.model_copy(update={"name": name, "snapshot": snapshot or None})
    if opts.data:
        data = dict(exp.data)
        for entry in opts.data:
            bench, sep, source = entry.partition("=")
            if not sep or not bench or not source:
                raise UserError(
                    f"malformed --data {entry!r}: expected BENCHMARK=PATH|hub:ID|synthetic"
                )
            data[bench.strip()] = source.strip()
        update["data"] = data
    if opts.budget_usd is not None:
        update["budget_usd"] = opts.budget_usd
    if opts.executor or opts.max_parallel:
        ex = exp.executor.model_copy(
            update={
                k: v
                for k, v in {"name": opts.executor, "max_parallel": opts.max_parallel}.items()
                if v
            }
        )
        update["executor"] = ex
    return exp.model_copy(update=update) if update else exp


def build_plan(opts: Options, plugins: Plugins) -> Plan:
    registry = load_registry(opts.registry)
    exp = build_experiment(opts, registry)
    axes = parse_matrix(opts.matrix)
    cells = expand(exp, registry, plugins, axes)
    if not cells:
        raise UserError("the matrix has no cells")
    for bench in exp.data:
        plugins.get("benchmark", bench)
    mirror = opts.assets_mirror or os.environ.get("HARNESS_ASSETS_MIRROR") or None
    from harness.assets import plan_assets

    assets = plan_assets(cells, plugins, Path(mirror) if mirror else None, opts.registry)
    steps = build_dag(cells, plugins, assets)
    run_dir = Path(opts.out or Path("runs") / exp.name).resolve()
    store = Path(opts.store).resolve() if opts.store else run_dir / "store"
    experiment = exp.model_dump(mode="json")
    if axes:
        experiment["matrix"] = axes
    return Plan(
        run_dir=run_dir,
        store_root=store,
        experiment=experiment,
        cells={c.id: c for c in cells},
        steps=steps,
        registry_file=str(Path(opts.registry).resolve()) if opts.registry else None,
        assets_mirror=str(Path(mirror).resolve()) if mirror else None,
        assets=assets,
    )
