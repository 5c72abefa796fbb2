"""The persistent judge cache: a judgment once paid for is never paid for again.

One SQLite file in the store (WAL, so readers never block the writer), keyed by the sha256 of
everything that determines a judgment: the judge snapshot, the messages, temperature,
max_tokens, the repeat index `run` and the re-ask index `attempt` (so MM-Vet's five grading runs
are five entries). Only successful responses are stored, with their token usage. Every call
opens its own short-lived connection, so threads and processes can share the file safely.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness.protocols import JudgeRequest, JudgeResponse
from harness.support.hashing import sha256_json

KEY_VERSION = "judge-cache-v1"  # bump when what a key covers changes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgments (
    key TEXT PRIMARY KEY,
    snapshot TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(snapshot: str, request: JudgeRequest) -> str:
    """sha256 of (snapshot, messages, temperature, max_tokens, run, attempt)."""
    payload = [
        KEY_VERSION,
        snapshot,
        [dict(sorted(m.items())) for m in request.messages],
        float(request.temperature),
        int(request.max_tokens),
        int(request.run),
        int(request.attempt),
    ]
    return sha256_json(payload)


def _use_wal(conn: sqlite3.Connection, attempts: int = 200) -> None:
    """Switch the file to WAL once. Two processes opening a new cache at the same moment can
    find it locked while the other switches (SQLite's busy timeout does not cover this), so
    the switch is retried briefly."""
    import time

    for attempt in range(attempts):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


class JudgeCache:
    """Cached judge responses in the SQLite file at `path` (created with its folder)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:  # create the schema now, so errors show up here
            _use_wal(conn)
            conn.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation, closed after it.

        No connection outlives a call, so none is open when the process forks (SQLite's
        locks do not survive a fork: a child writing beside a parent's open connection
        loses rows).
        """
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        finally:
            conn.close()

    def get_many(
        self, snapshot: str, requests: Sequence[JudgeRequest]
    ) -> list[JudgeResponse | None]:
        """The cached response for each request (marked cached=True), or None."""
        keys = [cache_key(snapshot, r) for r in requests]
        found: dict[str, tuple[str, int, int]] = {}
        with self._connect() as conn:
            for start in range(0, len(keys), 500):  # stay under SQLite's variable limit
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT key, text, prompt_tokens, completion_tokens FROM judgments "
                    f"WHERE key IN ({marks})",
                    chunk,
                )
                found.update({key: (text, p, c) for key, text, p, c in rows})
        out: list[JudgeResponse | None] = []
        for request, key in zip(requests, keys, strict=True):
            hit = found.get(key)
            out.append(
                None
                if hit is None
                else JudgeResponse(
                    id=request.id,
                    text=hit[0],
                    prompt_tokens=hit[1],
                    completion_tokens=hit[2],
                    cached=True,
                )
            )
        return out

    def get(self, snapshot: str, request: JudgeRequest) -> JudgeResponse | None:
        return self.get_many(snapshot, [request])[0]

    def put_many(self, snapshot: str, pairs: Sequence[tuple[JudgeRequest, JudgeResponse]]) -> int:
        """Store the successful responses (failed ones never); returns how many were stored."""
        rows = [
            (
                cache_key(snapshot, req),
                snapshot,
                resp.text,
                resp.prompt_tokens,
                resp.completion_tokens,
                time.time(),
            )
            for req, resp in pairs
            if resp.ok and resp.text is not None
        ]
        if rows:
            with self._connect() as conn:
                conn.execute("BEGIN IMMEDIATE")  # one transaction
                conn.executemany("INSERT OR REPLACE INTO judgments VALUES (?, ?, ?, ?, ?, ?)", rows)
                conn.execute("COMMIT")
        return len(rows)

    def put(self, snapshot: str, request: JudgeRequest, response: JudgeResponse) -> bool:
        return self.put_many(snapshot, [(request, response)]) == 1

    def __len__(self) -> int:
        with self._connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]
