"""registry.toml read into specs: sizes, towers, method defaults, hardware, judges, assets.

The project's file is the base; a user's `--registry FILE` is merged over it table by table, so
a user adds a size or changes one price without copying the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.config.validation import describe_error, did_you_mean, read_toml
from harness.errors import UserError
from harness.specs import ExperimentSpec, HardwareSpec, SizeSpec, TowerSpec, TrainSpec
from harness.support.paths import default_registry_file

TABLES = ("sizes", "towers", "methods", "hardware", "judges", "assets", "experiments")


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base`; nested tables merge, everything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    return read_toml(path, "registry file")


def _first_error(exc: ValidationError, model: type | None = None) -> str:
    return describe_error(exc, model)


@dataclass(frozen=True)
class Registry:
    """The registry as specs; raw tables are kept for the plugins that own them."""

    sizes: dict[str, SizeSpec]
    towers: dict[str, TowerSpec]
    methods: dict[str, dict[str, Any]]
    hardware: dict[str, HardwareSpec]
    judges: dict[str, dict[str, float]]
    assets: dict[str, dict[str, Any]]
    experiments: dict[str, dict[str, Any]]
    sources: tuple[str, ...] = field(default=())

    def size(self, name: str) -> SizeSpec:
        return self.sizes[lookup(name, self.sizes, "size")]

    def tower(self, name: str) -> TowerSpec:
        return self.towers[lookup(name, self.towers, "vision tower")]

    def hw(self, name: str) -> HardwareSpec:
        return self.hardware[lookup(name, self.hardware, "hardware")]

    def experiment(self, name: str) -> ExperimentSpec:
        raw = self.experiments[lookup(name, self.experiments, "experiment")]
        try:
            return ExperimentSpec.model_validate({"name": name, **raw})
        except ValidationError as exc:
            why = _first_error(exc, ExperimentSpec)
            raise UserError(f"experiment {name!r} in the registry: {why}") from None


def lookup(name: str, known: dict[str, Any] | list[str], what: str) -> str:
    """`name` if known, else a UserError with a did-you-mean suggestion."""
    if name in known:
        return name
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"
    raise UserError(f"unknown {what} {name!r}{hint}")


def load_registry(extra: Path | None = None) -> Registry:
    """The project's registry, with `extra` (a user's file) merged over it."""
    sources = [default_registry_file()]
    raw = _read_toml(sources[0])
    if extra is not None:
        sources.append(Path(extra))
        raw = deep_merge(raw, _read_toml(Path(extra)))
    for name in raw:
        if name not in TABLES:
            hint = did_you_mean(name, list(TABLES))
            raise UserError(f"registry {sources[-1]}: unknown table [{name}]{hint}")
        body = raw[name]
        if not isinstance(body, dict) or not all(isinstance(v, dict) for v in body.values()):
            raise UserError(f"registry {sources[-1]}: [{name}] must hold tables, as [{name}.NAME]")
    _check_methods(raw.get("methods", {}), sources[-1])
    _check_prices(raw.get("judges", {}), sources[-1])

    def build(table: str, cls: type) -> dict[str, Any]:
        out = {}
        for name, body in raw.get(table, {}).items():
            try:
                out[name] = cls.model_validate({"name": name, **body})
            except ValidationError as exc:
                raise UserError(
                    f"registry {sources[-1]}: [{table}.{name}] {_first_error(exc, cls)}"
                ) from None
        return out

    return Registry(
        sizes=build("sizes", SizeSpec),
        towers=build("towers", TowerSpec),
        methods=raw.get("methods", {}),
        hardware=build("hardware", HardwareSpec),
        judges=raw.get("judges", {}),
        assets=raw.get("assets", {}),
        experiments=raw.get("experiments", {}),
        sources=tuple(str(s) for s in sources),
    )


def _check_methods(methods: dict[str, dict[str, Any]], source: Path) -> None:
    """Every [methods.NAME] key is a training setting (a misspelt one would be ignored)."""
    known = [f for f in TrainSpec.model_fields if f != "method"]
    for name, body in methods.items():
        for key in body:
            if key not in known:
                hint = did_you_mean(key, known)
                raise UserError(f"registry {source}: [methods.{name}] unknown key {key!r}{hint}")


def _check_prices(judges: dict[str, dict[str, Any]], source: Path) -> None:
    """Judge prices are finite numbers >= 0 (a negative price would hide spend)."""
    for name, body in judges.items():
        for key, value in body.items():
            if "usd" not in key:
                continue
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value < 0:
                raise UserError(
                    f"registry {source}: [judges.{name}] {key} must be a number >= 0, got {value!r}"
                )
