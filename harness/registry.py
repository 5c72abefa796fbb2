"""registry.toml read into specs: sizes, towers, method defaults, hardware, judges, assets.

The project's file is the base; a user's `--registry FILE` is merged over it table by table, so
a user adds a size or changes one price without copying the rest.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import UserError
from harness.paths import default_registry_file
from harness.specs import ExperimentSpec, HardwareSpec, SizeSpec, TowerSpec


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
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"registry file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"registry file {path} is not valid TOML: {exc}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]


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
            raise UserError(f"experiment {name!r} in the registry: {_first_error(exc)}") from None


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
    unknown = set(raw) - {
        "sizes",
        "towers",
        "methods",
        "hardware",
        "judges",
        "assets",
        "experiments",
    }
    if unknown:
        raise UserError(f"registry: unknown table(s) {sorted(unknown)} in {sources[-1]}")

    def build(table: str, cls: type) -> dict[str, Any]:
        out = {}
        for name, body in raw.get(table, {}).items():
            try:
                out[name] = cls.model_validate({"name": name, **body})
            except ValidationError as exc:
                raise UserError(
                    f"registry {sources[-1]}: [{table}.{name}] {_first_error(exc)}"
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
