"""The free-form tables of an experiment (`stage1`, `stage2`, `eval`) checked key by key.

These tables hold settings and sub-tables named after sizes, methods or benchmarks, so pydantic
cannot check them alone: a misspelt `[stage2.lroa]` or `[eval.mmlux]` would otherwise be read as
a sub-table nobody asks for and be ignored. Every key must be a setting or a known name, and
every setting must be in its range, whether or not a cell of this matrix uses it.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from harness.config.registry import Registry
from harness.config.validation import describe_error, did_you_mean
from harness.errors import UserError
from harness.plugins import Plugins
from harness.specs import EvalSpec, ExperimentSpec, TrainSpec

TRAIN_SETTINGS = [f for f in TrainSpec.model_fields if f != "checkpoint"]
EVAL_SETTINGS = [f for f in EvalSpec.model_fields if f not in ("benchmark", "source")]


def check_tables(exp: ExperimentSpec, registry: Registry, plugins: Plugins) -> None:
    """Refuse an unknown key or an out-of-range value in stage1, stage2 or eval (one line)."""
    sizes = ["tiny", *registry.sizes]
    _check_train_table(exp.stage1, ["stage1"], sizes)  # stage 1 trains the projector only
    _check_train_table(exp.stage2, ["stage2"], [*sizes, *plugins.names("backend")])
    _check_eval_table(exp.eval, plugins.names("benchmark"))
    for bench in exp.judge.snapshots:
        if bench not in plugins.names("benchmark"):
            hint = did_you_mean(bench, plugins.names("benchmark"))
            raise UserError(f"[judge.snapshots] unknown benchmark {bench!r}{hint}")


def _check_train_table(table: dict[str, Any], where: list[str], groups: list[str]) -> None:
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key in TRAIN_SETTINGS:
            settings[key] = value
        elif key in groups:
            if not isinstance(value, dict):
                raise UserError(f"[{'.'.join([*where, key])}] must be a table of settings")
            _check_train_table(value, [*where, key], groups)
        else:
            _unknown(key, value, where, TRAIN_SETTINGS, groups)
    try:
        TrainSpec.model_validate({"method": "check", **settings})
    except ValidationError as exc:
        raise UserError(f"[{'.'.join(where)}] {describe_error(exc, TrainSpec)}") from None


def _check_eval_table(table: dict[str, Any], benchmarks: list[str]) -> None:
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key in EVAL_SETTINGS:
            settings[key] = value
        elif key in benchmarks:
            if not isinstance(value, dict):
                raise UserError(f"[eval.{key}] must be a table of settings")
            for sub in value:
                if sub not in EVAL_SETTINGS:
                    _unknown(sub, value[sub], ["eval", key], EVAL_SETTINGS, [])
            _validate_eval(value, f"[eval.{key}]")
        else:
            _unknown(key, value, ["eval"], EVAL_SETTINGS, benchmarks)
    _validate_eval(settings, "[eval]")


def _validate_eval(settings: dict[str, Any], where: str) -> None:
    try:
        EvalSpec.model_validate({"benchmark": "check", **settings})
    except ValidationError as exc:
        raise UserError(f"{where} {describe_error(exc, EvalSpec)}") from None


def _unknown(key: str, value: Any, where: list[str], settings: list[str], names: list[str]) -> None:
    """A table is matched against the names it may be, a value against the settings."""
    if isinstance(value, dict):
        path = ".".join([*where, key])
        raise UserError(f"[{path}] unknown table {key!r}{did_you_mean(key, names or settings)}")
    raise UserError(f"[{'.'.join(where)}] unknown key {key!r}{did_you_mean(key, settings)}")
