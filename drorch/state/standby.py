"""What each standby copy holds: the snapshot applied, when, and whether it was promoted.

Written by the follower on the standby's host after every sync and by
``promote``; read by ``status`` and its metrics (standby lag, data lag) and by
the follower itself, which never applies a snapshot over a promoted copy: once
promoted, the copy is the live data and the next snapshot at the target may
be older than what it now serves. ``rejoin`` clears the flag after failback.

Like the rest of the state database this is a record, not the data: losing it
costs nothing but a promotion (unchanged files are found by comparing, not
by this record), so a promoted standby's ``$DRORCH_HOME`` is kept until failback.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from drorch.state.tables import StateTables

__all__ = ["StandbyRecord", "StandbyStates"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS standby (
    policy TEXT NOT NULL,
    mirror TEXT NOT NULL,
    path TEXT NOT NULL,
    host TEXT,
    snapshot TEXT,
    snapshot_time_ns INTEGER,
    applied_at REAL,
    promoted_at REAL,
    detail TEXT,
    PRIMARY KEY (policy, mirror)
);
"""


@dataclass(frozen=True)
class StandbyRecord:
    policy: str
    mirror: str
    path: str
    host: str | None
    snapshot: str | None  # the snapshot the copy holds; None before the first sync
    snapshot_time_ns: int | None
    applied_at: float | None  # epoch seconds the sync of ``snapshot`` finished
    promoted_at: float | None  # set by promote: the copy serves, the follower is paused
    detail: dict[str, Any]

    @property
    def promoted(self) -> bool:
        return self.promoted_at is not None

    @property
    def data_lag_s(self) -> float | None:
        """From the snapshot being taken to it being live at the standby."""
        if self.applied_at is None or self.snapshot_time_ns is None:
            return None
        return max(0.0, self.applied_at - self.snapshot_time_ns / 1e9)


class StandbyStates(StateTables):
    schema = _SCHEMA

    def get(self, policy: str, mirror: str) -> StandbyRecord | None:
        with self._db() as db:
            row = db.execute("SELECT policy, mirror, path, host, snapshot, snapshot_time_ns, applied_at, "
                             "promoted_at, detail FROM standby WHERE policy = ? AND mirror = ?",
                             (policy, mirror)).fetchone()
        if row is None:
            return None
        return StandbyRecord(*row[:8], json.loads(row[8] or "{}"))  # type: ignore[call-arg]

    def applied(self, policy: str, mirror: str, *, path: str, host: str | None, snapshot: str,
                snapshot_time_ns: int, detail: dict[str, Any]) -> None:
        """The copy at ``path`` now holds ``snapshot`` (a promotion, if any, is kept)."""
        with self._db() as db:
            db.execute(
                "INSERT INTO standby (policy, mirror, path, host, snapshot, snapshot_time_ns, applied_at, "
                "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (policy, mirror) DO UPDATE SET "
                "path = excluded.path, host = excluded.host, snapshot = excluded.snapshot, "
                "snapshot_time_ns = excluded.snapshot_time_ns, applied_at = excluded.applied_at, "
                "detail = excluded.detail",
                (policy, mirror, path, host, snapshot, snapshot_time_ns, time.time(), json.dumps(detail)))

    def set_promoted(self, policy: str, mirror: str, *, path: str, host: str | None,
                     promoted: bool) -> None:
        """Mark the copy promoted (the follower pauses) or rejoined (it follows again).

        Promoting a promoted copy keeps the first promotion's time: that is what
        tells a repeated ``promote`` that its final catch-up already happened.
        """
        when = time.time() if promoted else None
        keep = "COALESCE(standby.promoted_at, excluded.promoted_at)" if promoted else "NULL"
        with self._db() as db:
            db.execute(
                "INSERT INTO standby (policy, mirror, path, host, promoted_at) VALUES (?, ?, ?, ?, ?) "
                f"ON CONFLICT (policy, mirror) DO UPDATE SET promoted_at = {keep}",
                (policy, mirror, path, host, when))
