"""`--matrix` axes -> cells (cartesian product) -> resolved CellSpecs.

An axis names a spec field; its values are parsed and checked here so that a typo fails at once
with one line, before anything trains.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from harness.config.registry import Registry, lookup
from harness.config.validation import describe_error
from harness.errors import UserError
from harness.plugins import Plugins
from harness.protocols import InheritsSettings, LanguageOnly
from harness.specs import (
    CellSpec,
    DataMixSpec,
    DataSource,
    EvalSpec,
    ExperimentSpec,
    JudgeSpec,
    ModelSpec,
    TrainSpec,
)


def _int(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer axis value in [low, high]; ValueError says what is wrong."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError("must be an integer") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be >= {low}" if high is None else f"must be {low}..{high}")
        return value

    return parse


def _positive(text: str) -> float:
    """A finite number > 0 (learning rates, alpha, epochs)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError("must be a finite number > 0")
    return value


# axis -> (aliases, parser). Axis values arrive as strings from the CLI.
AXES: dict[str, tuple[tuple[str, ...], Callable[[str], Any]]] = {
    "size": (("sizes",), str),
    "method": (("methods",), str),
    "res": (("resolution", "resolutions"), _int(1)),
    "mix": (("mixes",), str),
    "projector": ((), str),
    "rank": (("ranks",), _int(1)),
    "alpha": ((), _positive),
    "lr": (("lrs",), _positive),
    "epochs": ((), _positive),
    "steps": (("max_steps",), _int(1)),
    "batch": (("global_batch",), _int(1)),
    "zero": (("zero_stage",), _int(0, 3)),
    "nodes": ((), _int(1)),
    "seed": (("seeds",), _int(0)),
    "beam": (("beams",), _int(1)),
    "runs": ((), _int(1)),
    "judge": (("judges",), str),
    "control": ((), str),
    "hardware": ((), str),
}
_ALIAS = {alias: axis for axis, (aliases, _) in AXES.items() for alias in (axis, *aliases)}


def canonical_axis(name: str) -> str:
    if name in _ALIAS:
        return _ALIAS[name]
    return lookup(name, sorted(_ALIAS), "matrix axis")


def parse_axis_values(axis: str, texts: list[str], where: str = "matrix axis") -> list[Any]:
    """Each value parsed and range-checked; a bad or repeated one is named with its axis."""
    values = []
    for text in texts:
        try:
            value = AXES[axis][1](text.strip())
        except ValueError as exc:
            raise UserError(f"{where} {axis}={text.strip()}: {axis} {exc}") from None
        if value in values:
            raise UserError(f"{where} {axis}: the value {text.strip()!r} is given twice")
        values.append(value)
    return values


def parse_matrix(args: list[str]) -> dict[str, list[Any]]:
    """["sizes=33b,65b", "methods=lora"] -> {"size": ["33b", "65b"], "method": ["lora"]}."""
    axes: dict[str, list[Any]] = {}
    given: dict[str, str] = {}
    for arg in args:
        for part in arg.split():
            name, sep, values = part.partition("=")
            if not sep or not name or not values or "" in values.split(","):
                raise UserError(f"malformed --matrix entry {part!r}: expected AXIS=V1,V2,...")
            axis = canonical_axis(name.strip())
            if axis in given:
                raise UserError(
                    f"matrix axis {axis!r} is given twice ({given[axis]} and {part}): "
                    f"give its values once, as {axis}=V1,V2"
                )
            given[axis] = part
            axes[axis] = parse_axis_values(axis, values.split(","), "--matrix")
    return axes


def experiment_axes(exp: ExperimentSpec) -> dict[str, list[Any]]:
    """The experiment's own axes (sizes, methods, ...) with its extra `axes` table over them."""
    axes: dict[str, list[Any]] = {"size": list(exp.sizes), "method": list(exp.methods)}
    if exp.resolutions:
        axes["res"] = list(exp.resolutions)
    axes["mix"] = list(exp.mixes)
    for name, values in exp.axes.items():
        axis = canonical_axis(name)
        axes[axis] = parse_axis_values(axis, [str(v) for v in values], "axes table:")
    return axes


def merged_axes(exp: ExperimentSpec, overrides: dict[str, list[Any]] | None) -> dict[str, list]:
    """The axes a matrix expands: the experiment's, with the CLI's replacing them."""
    return {**experiment_axes(exp), **(overrides or {})}


def cell_id(point: dict[str, Any], varying: set[str]) -> str:
    parts = [str(point["size"]), str(point["method"])]
    short = {"rank": "r", "alpha": "a", "lr": "lr", "beam": "beam", "res": "res", "runs": "runs"}
    for axis in sorted(varying - {"size", "method"}):
        value = point[axis]
        parts.append(f"{short.get(axis, axis)}{value}" if axis in short else f"{axis}-{value}")
    return "_".join(parts).replace("/", "-")


def expand(
    exp: ExperimentSpec,
    registry: Registry,
    plugins: Plugins,
    overrides: dict[str, list[Any]] | None = None,
) -> list[CellSpec]:
    """Every cell of the experiment's matrix (CLI axes replace the experiment's)."""
    axes = merged_axes(exp, overrides)
    varying = {axis for axis, values in axes.items() if len(values) > 1}
    names = list(axes)
    cells = []
    for values in itertools.product(*(axes[n] for n in names)):
        point = dict(zip(names, values, strict=True))
        cells.append(resolve_cell(exp, point, cell_id(point, varying), registry, plugins))
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        raise UserError("the matrix has duplicate values on an axis")
    return cells


def _overrides(table: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """Plain TrainSpec fields, then the sub-tables named by `keys` over them, in order.

    Keys are "tiny" (every tiny size), the size name and the method name; a size's sub-table
    may hold method sub-tables of its own.
    """
    out = {k: v for k, v in table.items() if not isinstance(v, dict) or k == "quantization"}
    for key in keys:
        sub = table.get(key)
        if isinstance(sub, dict) and key != "quantization":
            out.update(_overrides(sub, keys[keys.index(key) + 1 :]))
    return out


def _train_spec(layers: list[dict[str, Any]], what: str) -> TrainSpec:
    merged: dict[str, Any] = {}
    for layer in layers:
        if "lora_rank" in layer and "lora_alpha" not in layer:
            merged.pop("lora_alpha", None)  # the study's rule: alpha = 2 x rank unless given
        merged.update(layer)
    if merged.get("lora_rank") and not merged.get("lora_alpha"):
        merged["lora_alpha"] = 2 * merged["lora_rank"]
    try:
        return TrainSpec.model_validate(merged)
    except ValidationError as exc:
        raise UserError(f"{what}: {describe_error(exc, TrainSpec)}") from None


def method_lineage(method: str, plugins: Plugins) -> list[str]:
    """The methods whose settings a method takes, the one it inherits from first: ["lora",
    "dora"] for a backend with `inherits = "lora"` (InheritsSettings), else [method]."""
    lineage = [method]
    backend = plugins.backend(method)
    while isinstance(backend, InheritsSettings) and (parent := backend.inherits) is not None:
        if not isinstance(parent, str) or parent in lineage:
            chain = " -> ".join([*reversed(lineage), repr(parent)])
            raise UserError(f"backend {method!r}: inherits must name another method ({chain})")
        try:
            backend = plugins.backend(parent)
        except UserError as exc:
            raise UserError(f"backend {method!r}: inherits = {parent!r}: {exc}") from None
        lineage.insert(0, parent)
    return lineage


def resolve_cell(
    exp: ExperimentSpec, point: dict[str, Any], cid: str, registry: Registry, plugins: Plugins
) -> CellSpec:
    size = registry.size(point["size"])
    tower = registry.tower(size.tower)
    res = point.get("res") or tower.resolutions[0]
    method = point["method"]
    backend = plugins.backend(method)
    try:
        model = ModelSpec(
            size=size,
            tower=tower,
            resolution=res,
            projector=point.get("projector", exp.projector),
        )
    except ValidationError as exc:
        raise UserError(f"cell {cid}: {describe_error(exc, ModelSpec)}") from None
    if model.is_tiny:  # its foundation models are pretrained on the experiment's world
        model = model.model_copy(update={"foundation_seed": exp.seed})

    groups = (["tiny"] if size.tiny is not None else []) + [size.name]
    s1_method = exp.stage1.get("method", "projector")
    stage1 = _train_spec(
        [
            registry.methods.get("projector", {}),
            _overrides(exp.stage1, groups),
            {"method": s1_method, "seed": point.get("seed", exp.seed)},
        ],
        f"cell {cid} stage 1",
    )
    axis_train = {
        "lora_rank": point.get("rank"),
        "lora_alpha": point.get("alpha"),
        "lr": point.get("lr"),
        "epochs": point.get("epochs"),
        "max_steps": point.get("steps"),
        "global_batch": point.get("batch"),
        "zero_stage": point.get("zero"),
        "nodes": point.get("nodes"),
    }
    lineage = method_lineage(method, plugins)
    stage2 = _train_spec(
        [
            *(registry.methods.get(name, {}) for name in lineage),
            dict(backend.defaults(size)),
            _overrides(exp.stage2, [*groups, *lineage]),
            {k: v for k, v in axis_train.items() if v is not None},
            {"method": method, "seed": point.get("seed", exp.seed)},
        ],
        f"cell {cid} stage 2",
    )
    judge = exp.judge
    if "judge" in point:
        name, _, snapshot = str(point["judge"]).partition(":")
        judge = judge.model_copy(update={"name": name, "snapshot": snapshot or None})
    plugins.judge(judge.name)
    evals = [_eval_spec(exp, bench, point, plugins) for bench in exp.benchmarks]
    if isinstance(backend, LanguageOnly) and backend.language_only:
        evals = [e for e in evals if plugins.benchmark(e.benchmark).modality == "language"]
    mix = _mix(point.get("mix", "llava"), exp.seed, exp.train_data)
    return CellSpec(
        id=cid,
        axes=point,
        model=model,
        mix=mix,
        stage1=stage1,
        stage2=stage2,
        evals=evals,
        judge=JudgeSpec.model_validate(judge.model_dump()),
        hardware=_hardware(registry, point, exp, size, stage2),
    )


def _hardware(
    registry: Registry, point: dict[str, Any], exp: ExperimentSpec, size: Any, stage2: TrainSpec
) -> Any:
    """The cell's hardware: axis, experiment, or by size (CPU for tiny); nodes from stage 2."""
    name = point.get("hardware") or exp.hardware or ("cpu" if size.tiny is not None else "a100-80g")
    hw = registry.hw(name)
    return hw.model_copy(update={"nodes": stage2.nodes}) if stage2.nodes else hw


def _eval_spec(
    exp: ExperimentSpec, bench: str, point: dict[str, Any], plugins: Plugins
) -> EvalSpec:
    plugins.benchmark(bench)
    source = DataSource.parse(exp.data.get(bench, "synthetic"), seed=exp.seed)
    fields = {k: v for k, v in exp.eval.items() if not isinstance(v, dict)}
    fields.update(exp.eval.get(bench, {}) if isinstance(exp.eval.get(bench), dict) else {})
    for axis in ("beam", "runs", "control"):
        if axis in point:
            fields[axis] = point[axis]
    try:
        return EvalSpec(benchmark=bench, source=source, **fields)
    except ValidationError as exc:
        raise UserError(f"eval settings for {bench}: {describe_error(exc, EvalSpec)}") from None


def _mix(name: str, seed: int, train_data: dict[str, str] | None = None) -> DataMixSpec:
    """`llava` (instructions only) or `llava+sharegpt[:RATIO]` (language-only mixed in), read
    from the experiment's `train_data` sources (a LLaVA JSON file, a saved or hub dataset) and,
    for the roles it leaves out, from the synthetic world of the experiment's seed."""
    base, _, ratio = name.partition(":")
    given = {role: DataSource.parse(text, seed=seed) for role, text in (train_data or {}).items()}
    world = DataSource(seed=seed)
    sources = {role: given.get(role, world) for role in ("captions", "instructions")}
    if base == "llava":
        return DataMixSpec(name=name, **sources, seed=seed)
    if base == "llava+sharegpt":
        try:
            value = float(ratio) if ratio else 1.0
        except ValueError:
            raise UserError(f"mix {name!r}: the ratio {ratio!r} is not a number") from None
        if not 0 < value <= 1:  # NaN fails too
            raise UserError(f"mix {name!r}: the ratio must be in (0, 1], got {ratio}")
        return DataMixSpec(
            name=name,
            **sources,
            language=given.get("language", world),
            language_ratio=value,
            seed=seed,
        )
    raise UserError(f"unknown data mix {name!r}; known: llava, llava+sharegpt[:RATIO]")
