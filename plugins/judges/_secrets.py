"""The judge API key: read when judging starts, held only in memory, scrubbed from messages.

The key is never read at import, never put in a spec, result, cache row or log line. A missing
key is a UserError naming the variable (or file) to set, raised by the judge's check() before
any model is trained.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UserError

if TYPE_CHECKING:
    from harness.specs import JudgeSpec


class Secret:
    """A string that prints as *** (repr, str, f-strings), so tracebacks and logs cannot leak it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def scrub(self, text: str) -> str:
        """`text` with every occurrence of the secret replaced by ***."""
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def read_api_key(spec: JudgeSpec, judge: str) -> Secret:
    """The key from `spec.api_key_file` if given, else from the variable `spec.api_key_env`."""
    if spec.api_key_file:
        path = Path(spec.api_key_file).expanduser()
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise UserError(
                f"judge {judge!r}: cannot read the API key file {path} ({exc.strerror})"
            ) from None
        if not value:
            raise UserError(f"judge {judge!r}: the API key file {path} is empty")
        return Secret(value)
    value = os.environ.get(spec.api_key_env, "").strip() if spec.api_key_env else ""
    if not value:
        where = spec.api_key_env or "OPENAI_API_KEY"
        raise UserError(
            f"judge {judge!r} needs an API key: set the environment variable {where} "
            f"(or judge.api_key_file)"
        )
    return Secret(value)
