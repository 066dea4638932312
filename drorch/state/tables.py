"""The local state store: a record of runs, in SQLite under ``$DRORCH_HOME``.

It is a journal and a cache, never the truth about data: the repositories are.
Deleting the database loses history only; the next run recreates it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    policy TEXT NOT NULL,
    mirror TEXT,
    target TEXT,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    snapshot TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_mirror ON runs (policy, mirror, target, started);
"""


def home() -> Path:
    configured = os.environ.get("DRORCH_HOME")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "drorch"


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: str
    policy: str
    mirror: str | None
    target: str | None
    started: float
    finished: float | None
    status: str
    snapshot: str | None
    detail: dict[str, Any]


class StateTables:
    """Some tables of the state database, ``$DRORCH_HOME/state.db``; ``schema`` creates them.

    Every ``_db()`` block is one transaction, committed on success and rolled back
    on error, and synced (WAL, synchronous=FULL): journals written before and after
    each step must survive a crash of the process or the machine.
    """

    schema = ""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or home() / "state.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(self.schema)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            with db:
                yield db
        finally:
            db.close()


class StateStore(StateTables):
    """The record of runs (apply, per mirror)."""

    schema = _SCHEMA

    def start_run(self, kind: str, policy: str, mirror: str | None = None,
                  target: str | None = None) -> int:
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO runs (kind, policy, mirror, target, started, status) "
                "VALUES (?, ?, ?, ?, ?, 'running')", (kind, policy, mirror, target, time.time()))
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, snapshot: str | None = None,
                   detail: dict[str, Any] | None = None) -> None:
        with self._db() as db:
            db.execute("UPDATE runs SET finished = ?, status = ?, snapshot = ?, detail = ? "
                       "WHERE id = ?",
                       (time.time(), status, snapshot, json.dumps(detail or {}), run_id))

    def runs(self, policy: str | None = None, limit: int = 100) -> list[RunRecord]:
        query = "SELECT * FROM runs" + (" WHERE policy = ?" if policy else "")
        query += " ORDER BY id DESC LIMIT ?"
        args: tuple[Any, ...] = (policy, limit) if policy else (limit,)
        with self._db() as db:
            rows = db.execute(query, args).fetchall()
        return [RunRecord(*row[:9], json.loads(row[9] or "{}")) for row in rows]  # type: ignore[call-arg]
