"""Bad input as one line: pydantic errors named by key and value, did-you-mean for unknown names.

Used wherever user input (flags, config files, the registry) becomes specs, so that every
refusal names the culprit the same way.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.errors import UserError


def describe_error(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """The first validation error as one line naming the key and its value.

    An unknown key gets a did-you-mean from the fields of `model` at that place.
    """
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    where = ".".join(loc) or "value"
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        return f"unknown key {where!r}{did_you_mean(loc[-1], _fields_at(model, loc[:-1]))}"
    bounds = {
        "greater_than_equal": ">= {ge}",
        "greater_than": "> {gt}",
        "less_than_equal": "<= {le}",
        "less_than": "< {lt}",
    }
    if kind in bounds:
        msg = "must be " + bounds[kind].format(**{k: _plain(v) for k, v in ctx.items()})
    elif kind == "finite_number":
        msg = "must be a finite number"
    elif kind.startswith("int_"):
        msg = "must be an integer"
    elif kind.startswith("float_"):
        msg = "must be a number"
    else:
        msg = err["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    if not loc:
        return msg
    if ", got " in msg or isinstance(value, (dict, list)):
        return f"{where}: {msg}"
    return f"{where}: {msg}, got {value!r}"


def _plain(value: Any) -> Any:
    """1.0 -> 1, so that bounds read as the user wrote them."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def did_you_mean(name: str, known: list[str]) -> str:
    """'; did you mean 'x'?' for a close known name, else the known names (or nothing)."""
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; known: {', '.join(sorted(known))}" if known else ""


def _fields_at(model: type[BaseModel] | None, path: list[str]) -> list[str]:
    """The field names of the (nested) spec model at `path`, or [] when unknown."""
    for part in path:
        field = model.model_fields.get(part) if model is not None else None
        annotation = getattr(field, "annotation", None)
        is_spec = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if is_spec else None
    return list(model.model_fields) if model is not None else []


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file the user named (`what`: "config file", "registry file"), or one clear line."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder, not a TOML file")
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not a text file (not UTF-8)") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{what} {path} is not valid TOML: {exc}") from None
