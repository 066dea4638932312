"""Drill results in the state database, as JSON documents, for ``status``, reports and the scheduler.

One row per drill run in ``drill_results`` (same SQLite file as the run
journal, ``$DRORCH_HOME/state.db``). A row is written when the drill starts
(``running``) and replaced when it ends, so a drill killed outright is still
visible as one that never finished. Like all local state it is history only:
deleting it loses no data.

The documents are what ``drill.result.DrillResult.to_json`` writes; this layer
stores and finds them without knowing the drill package (``drill.history``
turns them back into results), so ``status`` can read them from below.
"""

from __future__ import annotations

import json
from typing import Any

from drorch.state.tables import StateTables

__all__ = ["DrillDocuments"]

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


Document = dict[str, Any]


class DrillDocuments(StateTables):
    """Drill results in the state database: what `status` and the report's history show."""

    schema = _SCHEMA

    def record_document(self, doc: Document, *, running: bool = False) -> None:
        """Insert or replace one drill's document (keys ``drill_id``, ``policy``, ``drill``,
        ``started``, ``finished``, ``verdict``); ``running`` marks a drill still under way."""
        verdict = "running" if running else doc["verdict"]
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO drill_results (id, policy, drill, started, finished, "
                       "verdict, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (doc["drill_id"], doc["policy"], doc["drill"], doc["started"], doc.get("finished"),
                        verdict, json.dumps(doc, default=str)))

    def recent_documents(self, policy: str, drill: str | None = None, limit: int = 10) -> list[Document]:
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
        return [json.loads(row[0]) for row in rows]

    def latest_documents(self, policy: str) -> dict[str, Document]:
        """The newest finished result of each drill of ``policy``."""
        out: dict[str, Document] = {}
        for doc in self.recent_documents(policy, limit=1000):
            out.setdefault(doc["drill"], doc)
        return out

    def unfinished(self, policy: str) -> list[str]:
        """IDs of drills recorded as running (the process may have died mid-way)."""
        with self._db() as db:
            rows = db.execute("SELECT id FROM drill_results WHERE policy = ? AND verdict = 'running'",
                              (policy,)).fetchall()
        return [row[0] for row in rows]
