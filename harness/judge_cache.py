"""The persistent judge cache: a judgment once paid for is never paid for again.

One SQLite file in the store (WAL, so readers never block the writer), keyed by the sha256 of
everything that determines a judgment: the judge snapshot, the messages, temperature,
max_tokens, the repeat index `run` and the re-ask index `attempt` (so MM-Vet's five grading runs
are five entries). Only successful responses are stored, with their token usage. Each thread
(and each process after a fork) gets its own connection, so the cache is safe to share.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from harness.protocols import JudgeRequest, JudgeResponse

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
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class JudgeCache:
    """Cached judge responses in the SQLite file at `path` (created with its folder)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connection()  # create the schema now, so errors show up here

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute(_SCHEMA)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def get_many(
        self, snapshot: str, requests: Sequence[JudgeRequest]
    ) -> list[JudgeResponse | None]:
        """The cached response for each request (marked cached=True), or None."""
        keys = [cache_key(snapshot, r) for r in requests]
        found: dict[str, tuple[str, int, int]] = {}
        conn = self._connection()
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
            conn = self._connection()
            with conn:  # one transaction
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR REPLACE INTO judgments VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def put(self, snapshot: str, request: JudgeRequest, response: JudgeResponse) -> bool:
        return self.put_many(snapshot, [(request, response)]) == 1

    def __len__(self) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM judgments").fetchone()[0]

    def close(self) -> None:
        """Close this thread's connection (other threads close theirs when they end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
