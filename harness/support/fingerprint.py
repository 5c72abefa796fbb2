"""Content fingerprints of local data, so that editing a data file gives its steps new keys.

A file is hashed (sha256) once and the hash remembered under its size, mtime and inode: a plan
over a 1 GB conversation JSON rereads it only after it changed, and a copy with a new mtime but
the same bytes keeps its keys (and its finished training steps). A folder is fingerprinted by
its annotation files (JSON, JSONL, TSV, CSV, Parquet, text) in the folder and one level below;
image files are not read.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.support.atomic import write_atomic
from harness.support.hashing import sha256_bytes, sha256_file, sha256_parts
from harness.support.paths import cache_dir

DATA_SUFFIXES = {".json", ".jsonl", ".tsv", ".csv", ".parquet", ".txt"}


def _memo_path(path: Path) -> Path:
    name = sha256_bytes(str(path))[:32]
    return cache_dir("fingerprints") / f"{name}.json"


def file_sha256(path: Path) -> str:
    """sha256 of the file's bytes, remembered while its size, mtime and inode stay the same."""
    path = Path(path).resolve()
    stat = path.stat()
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    memo = _memo_path(path)
    try:
        saved = json.loads(memo.read_text())
        if saved.get("stamp") == stamp:
            return saved["sha256"]
    except (OSError, ValueError):
        pass
    value = sha256_file(path)
    body = json.dumps({"path": str(path), "stamp": stamp, "sha256": value})
    write_atomic(memo, body, durable=False)
    return value


def _data_files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() in DATA_SUFFIXES:
            found.append(entry)
        elif entry.is_dir() and not entry.name.startswith("."):
            found += [
                sub
                for sub in sorted(entry.iterdir())
                if sub.is_file() and sub.suffix.lower() in DATA_SUFFIXES
            ]
    return found


def local_fingerprint(path: str | Path) -> str | None:
    """A file's sha256, or one sha256 over a folder's annotation files; None where the path
    does not exist (loading it fails later with its own message)."""
    target = Path(path).expanduser()
    if target.is_file():
        return file_sha256(target)
    if not target.is_dir():
        return None
    return sha256_parts(
        f"{file.relative_to(target).as_posix()}\0{file_sha256(file)}\n"
        for file in _data_files(target)
    )
