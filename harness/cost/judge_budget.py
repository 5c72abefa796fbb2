"""The judge's share of --budget-usd: a reservation before a judge step starts, spend per batch.

Judge steps run side by side (worker processes, cluster jobs) and see only the run folder. So
each one, before it sends anything, reserves its estimate in a small SQLite ledger in the run
folder, and is refused when what was already spent, plus every running step's reservation, plus
its own, would pass the budget. Then, before each request batch, it records what it has paid
and stops when that batch's estimate would take spend (with the others' unspent reservations)
past the budget; so spend passes the budget only by what the batches in flight cost beyond their
estimates. Dollars paid stay in the ledger when a step fails, so judging that stopped half-way
is still counted as spent.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import UserError

LEDGER_NAME = "judge_spend.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    step_key TEXT NOT NULL,
    step_id TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    reserved_usd REAL NOT NULL,
    paid_usd REAL NOT NULL DEFAULT 0,
    open INTEGER NOT NULL DEFAULT 1,
    started REAL NOT NULL
)
"""


def ledger_path(run_dir: Path | str) -> Path:
    return Path(run_dir) / LEDGER_NAME


def _alive(host: str, pid: int) -> bool:
    """Whether the process holding a reservation still runs (other hosts: assumed so)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SpendLedger:
    """Reservations and dollars paid by judge steps of one run folder."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute(_SCHEMA)
            yield conn
        finally:
            conn.close()

    def paid_by_step(self) -> dict[str, float]:
        """Dollars paid per step key, over every attempt (failed ones included)."""
        if not self.path.is_file():
            return {}
        with self._connect() as conn:
            rows = conn.execute("SELECT step_key, SUM(paid_usd) FROM attempts GROUP BY step_key")
            return {key: float(paid or 0.0) for key, paid in rows}

    @staticmethod
    def _unspent_reservations(conn: sqlite3.Connection, exclude: int | None) -> float:
        rows = conn.execute(
            "SELECT id, host, pid, reserved_usd, paid_usd FROM attempts WHERE open = 1"
        ).fetchall()
        return sum(
            max(0.0, reserved - paid)
            for rid, host, pid, reserved, paid in rows
            if rid != exclude and _alive(host, pid)
        )

    def reserve(
        self, step_key: str, step_id: str, estimate: float, budget: float, spent: float
    ) -> int:
        """Reserve `estimate` dollars for a judge step, or refuse (UserError) over budget.

        `spent` is the run's measured spend (GPU and judging, this ledger's payments included).
        """
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")  # one reservation at a time
            try:
                reserved = self._unspent_reservations(conn, None)
                if spent + reserved + estimate > budget + 1e-9:
                    raise UserError(
                        f"{step_id}: judging needs about ${estimate:,.2f}, and ${spent:,.2f} "
                        f"spent plus ${reserved:,.2f} reserved by running judge steps leaves "
                        f"${max(0.0, budget - spent - reserved):,.2f} of --budget-usd "
                        f"${budget:,.2f}; not started"
                    )
                cursor = conn.execute(
                    "INSERT INTO attempts (step_key, step_id, host, pid, reserved_usd, started) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (step_key, step_id, socket.gethostname(), os.getpid(), estimate, time.time()),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return int(cursor.lastrowid)

    def charge(self, attempt: int, paid_usd: float) -> None:
        """Record what the attempt has paid so far (a running total)."""
        with self._connect() as conn:
            conn.execute("UPDATE attempts SET paid_usd = ? WHERE id = ?", (paid_usd, attempt))

    def check(
        self, attempt: int, step_id: str, budget: float, spent: float, batch_usd: float
    ) -> None:
        """Refuse (UserError) the next batch, estimated at `batch_usd`, when it would take spend
        and the other steps' unspent reservations past the budget."""
        with self._connect() as conn:
            reserved = self._unspent_reservations(conn, attempt)
        if spent + reserved + batch_usd > budget + 1e-9:
            raise UserError(
                f"{step_id}: judging stopped: ${spent:,.2f} spent"
                + (f" and ${reserved:,.2f} reserved by other judge steps" if reserved else "")
                + f" reached --budget-usd ${budget:,.2f} (the answers so far are cached)"
            )

    def close(self, attempt: int) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE attempts SET open = 0 WHERE id = ?", (attempt,))
