"""sha256, one way for the whole harness: of bytes or text, of a file, of parts in order, and of
a value's canonical JSON.

Step keys, store manifests, asset pins, the judge cache and data fingerprints all hash through
these, so the same content gets the same digest wherever it is hashed, and a file is always
read in chunks (a multi-GB checkpoint never sits in memory whole).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any


def sha256_bytes(data: bytes | str) -> str:
    """Hex sha256 of bytes, or of text encoded as UTF-8."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sha256_parts(parts: Iterable[bytes | str]) -> str:
    """Hex sha256 of the parts fed in order (text as UTF-8): a digest over many files or
    records without joining them first. The caller separates parts where order alone could
    make two different inputs look alike."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
    return digest.hexdigest()


def canonical_json(value: Any) -> str:
    """The one JSON form a value hashes by: sorted keys, no whitespace, text unescaped."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_json(value: Any) -> str:
    """Hex sha256 of a JSON-able value's canonical form."""
    return sha256_bytes(canonical_json(value))
