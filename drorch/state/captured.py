"""What continuous mode knows about data not yet captured, in the state database.

RPO measures data at risk: changes not yet in a snapshot. For a cron mirror
the age of the newest snapshot is the honest measure. A continuous mirror
whose source has not changed for a day has nothing at risk, yet its newest
snapshot is a day old; reporting that as a breach would teach operators to
ignore breaches. So the watcher records, while it is idle and watching:

- ``clean_since``: when it started the snapshot that holds every change it
  had seen (no write has arrived since);
- ``confirmed_at``: the last time it confirmed that still no write arrived.

``status`` then uses ``now - confirmed_at`` as the age of a target whose
newest snapshot is at least as new as ``clean_since`` (that snapshot holds
everything written before ``confirmed_at``). Anything else falls back to the
snapshot's age: a watcher that died stops confirming, so its mirror breaches
once the confirmation is older than the RPO; a snapshot that failed leaves the
target older than ``clean_since``.
"""

from __future__ import annotations

from dataclasses import dataclass

from drorch.state.tables import StateTables

__all__ = ["Captured", "CaptureLedger"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS continuous_captured (
    policy TEXT NOT NULL,
    mirror TEXT NOT NULL,
    clean_since REAL NOT NULL,
    confirmed_at REAL NOT NULL,
    PRIMARY KEY (policy, mirror)
);
"""


@dataclass(frozen=True)
class Captured:
    clean_since: float  # epoch seconds
    confirmed_at: float  # epoch seconds

    def age_s(self, snapshot_time_s: float, now_s: float) -> float:
        """Age of the data at risk on a target whose newest snapshot is from ``snapshot_time_s``."""
        snapshot_age = now_s - snapshot_time_s
        if snapshot_time_s < self.clean_since:
            return snapshot_age
        return min(snapshot_age, max(0.0, now_s - self.confirmed_at))


class CaptureLedger(StateTables):
    schema = _SCHEMA

    def confirm(self, policy: str, mirror: str, clean_since: float, now: float) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO continuous_captured (policy, mirror, clean_since, "
                       "confirmed_at) VALUES (?, ?, ?, ?)", (policy, mirror, clean_since, now))

    def get(self, policy: str, mirror: str) -> Captured | None:
        with self._db() as db:
            row = db.execute("SELECT clean_since, confirmed_at FROM continuous_captured WHERE "
                             "policy = ? AND mirror = ?", (policy, mirror)).fetchone()
        return Captured(float(row[0]), float(row[1])) if row else None
