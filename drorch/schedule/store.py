"""When each scheduled job last fired, in the state database.

Persisted so a restarted scheduler knows what it missed while it was down:
one catch-up run per job, however many slots passed (``scheduler.py``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from drorch.state.tables import home

__all__ = ["ScheduleStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schedule_fired (
    policy TEXT NOT NULL,
    job TEXT NOT NULL,
    last_fired REAL NOT NULL,
    PRIMARY KEY (policy, job)
);
"""


class ScheduleStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or home() / "state.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                yield db
        finally:
            db.close()

    def last_fired(self, policy: str, job: str) -> float | None:
        with self._db() as db:
            row = db.execute("SELECT last_fired FROM schedule_fired WHERE policy = ? AND job = ?",
                             (policy, job)).fetchone()
        return float(row[0]) if row else None

    def set_fired(self, policy: str, job: str, when: float) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO schedule_fired (policy, job, last_fired) VALUES (?, ?, ?)",
                       (policy, job, when))
