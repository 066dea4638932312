"""Change statistics, verdicts and acknowledgements, kept in the state database.

The history must outlive retention (a mirror keeping 4 snapshots still has a
year of normal behaviour to learn from), so it lives here, not in the
repository. Losing the database loses the history and the acknowledgements,
never data: the detector waits for ``MIN_HISTORY`` runs again, and open flags
(with the retention hold they impose) are gone with it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields

from drorch.anomaly.stats import ChangeStats
from drorch.ports.errors import UsageError
from drorch.state.tables import StateTables

_SCHEMA = """
CREATE TABLE IF NOT EXISTS change_stats (
    policy TEXT NOT NULL,
    mirror TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    has_parent INTEGER NOT NULL,
    files_before INTEGER NOT NULL,
    bytes_before INTEGER NOT NULL,
    files_new INTEGER NOT NULL,
    files_changed INTEGER NOT NULL,
    files_deleted INTEGER NOT NULL,
    bytes_new INTEGER NOT NULL,
    bytes_incompressible INTEGER NOT NULL,
    reasons TEXT NOT NULL,
    acked REAL,
    PRIMARY KEY (policy, mirror, snapshot)
);
CREATE INDEX IF NOT EXISTS change_stats_by_time ON change_stats (policy, mirror, time_ns);
"""

_STATS = [f.name for f in fields(ChangeStats)]


@dataclass(frozen=True)
class Flag:
    """A snapshot the detector flagged, and whether an operator acknowledged it."""

    policy: str
    mirror: str
    snapshot: str
    time_ns: int
    reasons: tuple[str, ...]
    acked: float | None  # epoch seconds of the acknowledgement

    def describe(self) -> str:
        return f"mirror {self.mirror!r} snapshot {self.snapshot[:8]}: {'; '.join(self.reasons)}"


class AnomalyStore(StateTables):
    schema = _SCHEMA

    def record(self, policy: str, mirror: str, stats: ChangeStats, reasons: list[str]) -> None:
        values = [getattr(stats, name) for name in _STATS]
        with self._db() as db:
            db.execute(f"INSERT OR REPLACE INTO change_stats (policy, mirror, {', '.join(_STATS)}, "
                       f"reasons) VALUES ({', '.join('?' * (len(_STATS) + 3))})",
                       (policy, mirror, *values, json.dumps(reasons)))

    def discard(self, policy: str, mirror: str, snapshot: str) -> None:
        """Forget a record whose snapshot was never committed."""
        with self._db() as db:
            db.execute("DELETE FROM change_stats WHERE policy = ? AND mirror = ? AND snapshot = ?",
                       (policy, mirror, snapshot))

    def history(self, policy: str, mirror: str, limit: int = 500) -> list[ChangeStats]:
        """The mirror's normal history, oldest first: flagged runs count only once acknowledged."""
        with self._db() as db:
            rows = db.execute(
                f"SELECT {', '.join(_STATS)} FROM change_stats WHERE policy = ? AND mirror = ? "
                "AND (reasons = '[]' OR acked IS NOT NULL) ORDER BY time_ns DESC LIMIT ?",
                (policy, mirror, limit)).fetchall()
        return [ChangeStats(row[0], row[1], bool(row[2]), *row[3:]) for row in reversed(rows)]

    def flags(self, policy: str, mirror: str | None = None, *, open_only: bool = True) -> list[Flag]:
        """Flagged snapshots, oldest first; only unacknowledged ones unless ``open_only`` is False."""
        query = ("SELECT policy, mirror, snapshot, time_ns, reasons, acked FROM change_stats "
                 "WHERE policy = ? AND reasons != '[]'")
        args: list[object] = [policy]
        if mirror is not None:
            query += " AND mirror = ?"
            args.append(mirror)
        if open_only:
            query += " AND acked IS NULL"
        with self._db() as db:
            rows = db.execute(query + " ORDER BY time_ns", args).fetchall()
        return [Flag(p, m, s, t, tuple(json.loads(r)), a) for p, m, s, t, r, a in rows]

    def hold_ns(self, policy: str, mirror: str) -> int | None:
        """Time of the newest unacknowledged flagged snapshot: retention keeps all up to it."""
        open_flags = self.flags(policy, mirror)
        return open_flags[-1].time_ns if open_flags else None

    def ack(self, policy: str, snapshot: str) -> Flag:
        """Acknowledge the flagged snapshot whose ID starts with ``snapshot``.

        Raises ``UsageError`` when no flagged snapshot matches (or several do).
        Acknowledging twice is not an error: the first acknowledgement stands.
        """
        matches = [f for f in self.flags(policy, open_only=False) if f.snapshot.startswith(snapshot)]
        if not matches:
            known = ", ".join(f.snapshot[:8] for f in self.flags(policy)) or "none"
            raise UsageError(f"no flagged snapshot {snapshot!r} in policy {policy!r}",
                             hint=f"flagged and not yet acknowledged: {known}")
        if len(matches) > 1:
            raise UsageError(f"snapshot prefix {snapshot!r} matches {len(matches)} flagged snapshots",
                             hint="give more characters of the ID")
        flag = matches[0]
        if flag.acked is None:
            now = time.time()
            with self._db() as db:
                db.execute("UPDATE change_stats SET acked = ? WHERE policy = ? AND mirror = ? "
                           "AND snapshot = ?", (now, flag.policy, flag.mirror, flag.snapshot))
            flag = Flag(flag.policy, flag.mirror, flag.snapshot, flag.time_ns, flag.reasons, now)
        return flag
