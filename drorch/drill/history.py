"""Drill results in the state database, for ``status``, reports and the scheduler.

One row per drill run in ``drill_results`` (same SQLite file as the run
journal, ``$DRORCH_HOME/state.db``). A row is written when the drill starts
(``running``) and replaced when it ends, so a drill killed outright is still
visible as one that never finished. Like all local state it is history only:
deleting it loses no data.
"""

from __future__ import annotations

import json

from drorch.drill.result import DrillResult
from drorch.state import StateTables

__all__ = ["DrillHistory"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS drill_results (
    id TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    drill TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    verdict TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS drill_results_by_policy ON drill_results (policy, drill, started);
"""


class DrillHistory(StateTables):
    """Drill results in the state database: what `status` and the report's history show."""

    schema = _SCHEMA

    def record(self, result: DrillResult, *, running: bool = False) -> None:
        verdict = "running" if running else result.verdict
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO drill_results (id, policy, drill, started, finished, "
                       "verdict, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (result.drill_id, result.policy, result.drill, result.started, result.finished,
                        verdict, json.dumps(result.to_json(), default=str)))

    def recent(self, policy: str, drill: str | None = None, limit: int = 10) -> list[DrillResult]:
        """Finished drills of ``policy`` (one drill, or all), newest first."""
        query = "SELECT doc FROM drill_results WHERE policy = ? AND verdict != 'running'"
        args: list[object] = [policy]
        if drill is not None:
            query += " AND drill = ?"
            args.append(drill)
        query += " ORDER BY started DESC LIMIT ?"
        args.append(limit)
        with self._db() as db:
            rows = db.execute(query, args).fetchall()
        return [DrillResult.from_json(json.loads(row[0])) for row in rows]

    def latest(self, policy: str) -> dict[str, DrillResult]:
        """The newest finished result of each drill of ``policy``, mock drills left out: a
        rehearsal against emulated clouds proves nothing about the real recovery."""
        out: dict[str, DrillResult] = {}
        for result in self.recent(policy, limit=1000):
            if not result.mock:
                out.setdefault(result.drill, result)
        return out

    def unfinished(self, policy: str) -> list[str]:
        """IDs of drills recorded as running (the process may have died mid-way)."""
        with self._db() as db:
            rows = db.execute("SELECT id FROM drill_results WHERE policy = ? AND verdict = 'running'",
                              (policy,)).fetchall()
        return [row[0] for row in rows]
