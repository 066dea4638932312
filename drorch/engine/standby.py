"""Following a mirror with a standby copy (SPEC §8): ``drorch standby``, ``promote``.

The follower runs on the standby's host. It reads the mirror's first target
(the one its snapshots commit to first) and, for each snapshot newer than the
copy, makes ``standby.path`` equal to it with ``restore.sync.TreeSync``:
only differing files are written, each whole, via a temporary name and rename;
what the snapshot no longer holds is removed. After each sync the state
database records the snapshot and when it became live, which ``status``
turns into standby lag and data lag.

Rules it keeps:

- **One writer per copy.** Each sync holds a process lock
  (``$DRORCH_HOME/standby/POLICY-MIRROR.lock``), so ``promote`` waits for a
  sync in flight instead of racing it.
- **A promoted copy is never overwritten.** ``promote`` marks the copy in the
  state database; the follower checks the mark under the lock before every
  sync and pauses (``--once`` returns) until ``rejoin`` clears it.
- **No repository lock.** Reading takes none, so a follower never blocks the
  mirror's next apply. A concurrent prune can only make a read fail (every
  blob is authenticated, nothing wrong is ever written); the follower then
  reloads the index and tries again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from drorch.engine.connect import open_repository
from drorch.engine.operations import common_parts
from drorch.policy import Mirror, Policy, Standby
from drorch.ports.errors import DrorchError, UsageError
from drorch.ports.progress import Progress
from drorch.repository.layout import FileType
from drorch.repository.repository import Repository
from drorch.repository.snapshot import Snapshot
from drorch.restore.sync import SyncStats, TreeSync
from drorch.secrets import KeySource, key_source
from drorch.state.locks import ProcessLock
from drorch.state.standby import StandbyRecord, StandbyStates
from drorch.state.tables import home as default_home

__all__ = ["Applied", "Follower", "StandbyPromoted", "standby_of"]

_ATTEMPTS = 3  # a sync that fails (prune moved a pack, the store hiccupped) is retried this often


class StandbyPromoted(DrorchError):
    """The copy was promoted: it serves, and following it would overwrite live data."""


@dataclass(frozen=True)
class Applied:
    """The outcome of one catch-up: the snapshot the copy holds now, and what changed."""

    snapshot: str
    snapshot_time_ns: int
    applied_at: float
    stats: SyncStats | None  # None: the copy already held it, nothing was compared

    @property
    def data_lag_s(self) -> float:
        return max(0.0, self.applied_at - self.snapshot_time_ns / 1e9)


def standby_of(policy: Policy, mirror_name: str) -> tuple[Mirror, Standby]:
    mirror = policy.mirror(mirror_name)
    if mirror.standby is None:
        raise UsageError(f"mirror '{mirror_name}' has no standby",
                         hint="add standby: {path: /srv/www, follow: continuous} to the mirror")
    return mirror, mirror.standby


class Follower:
    """Keeps ``mirror.standby.path`` equal to the newest snapshot at the mirror's first target."""

    def __init__(self, policy: Policy, mirror: str, *, keys: KeySource | None = None,
                 home: Path | None = None, log: Callable[[str], None] = print,
                 progress: Progress | None = None) -> None:
        self.policy = policy
        self.mirror, self.standby = standby_of(policy, mirror)
        self.target = self.mirror.targets[0]
        self.keys = keys or key_source(policy.encryption)
        self.home = home or default_home()
        if self.home.resolve().is_relative_to(self.standby.path.resolve()):
            raise UsageError(f"the state directory {self.home} is inside the standby path {self.path}, "
                             "which the follower makes equal to the snapshot",
                             hint="give DRORCH_HOME a directory outside the standby path")
        self.states = StandbyStates(self.home / "state.db")
        self.log = log
        self.progress = progress
        self._repo: Repository | None = None
        self._seen: dict[str, Snapshot | None] = {}  # snapshot ID -> the snapshot if of this mirror

    @property
    def path(self) -> Path:
        return self.standby.path

    def record(self) -> StandbyRecord | None:
        return self.states.get(self.policy.metadata.name, self.mirror.name)

    # ----------------------------------------------------------------------- catching up

    def catch_up(self, *, promoting: bool = False, lock_wait_s: float = 600.0) -> Applied | None:
        """Apply the newest snapshot if the copy does not hold it; None when the target has none.

        Raises ``StandbyPromoted`` when the copy was promoted (unless ``promoting``:
        promote's own final catch-up).
        """
        with self._locked(lock_wait_s):
            record = self.record()
            if record is not None and record.promoted and not promoting:
                raise StandbyPromoted(f"the standby of mirror '{self.mirror.name}' at {self.path} was "
                                      "promoted and serves; it is not followed",
                                      hint="after failback: drorch standby POLICY --mirror M --rejoin")
            if promoting and record is not None and _promotion_finished(record):
                assert record.snapshot is not None and record.snapshot_time_ns is not None
                return Applied(record.snapshot, record.snapshot_time_ns, record.applied_at or 0.0, None)
            newest = self.newest()
            if newest is None:
                return None
            current = record is not None and record.snapshot == newest.id and self.path.is_dir()
            stats = None if current else self._apply(newest)
            if current and not promoting:
                assert record is not None
                return Applied(newest.id, newest.time_ns, record.applied_at or time.time(), None)
            self.states.applied(self.policy.metadata.name, self.mirror.name, path=str(self.path),
                                host=self.standby.host, snapshot=newest.id,
                                snapshot_time_ns=newest.time_ns, detail=asdict(stats) if stats else {})
            applied = Applied(newest.id, newest.time_ns, time.time(), stats)
            if stats is None:
                return applied
            self.log(f"standby {self.mirror.name}: applied {newest.id[:8]} to {self.path} "
                     f"({stats.files_written} written, {stats.removed} removed, "
                     f"{stats.files_unchanged} unchanged; data lag {applied.data_lag_s:.1f}s)")
            return applied

    def newest(self) -> Snapshot | None:
        """The mirror's newest snapshot at the first target (snapshot files are read once each)."""
        repo = self._repository()
        listed = [file_id for file_id, _ in repo.list_ids(FileType.SNAPSHOT)]
        for file_id in listed:
            if file_id not in self._seen:
                snapshot = Snapshot.from_json(file_id, repo.load_unpacked(FileType.SNAPSHOT, file_id))
                self._seen[file_id] = snapshot if snapshot.mirror == self.mirror.name else None
        ours = [s for file_id in listed if (s := self._seen[file_id]) is not None]
        return max(ours, key=lambda s: s.time_ns, default=None)

    def _apply(self, snapshot: Snapshot) -> SyncStats:
        for attempt in range(1, _ATTEMPTS + 1):
            repo = self._repository()
            try:
                _refresh_index(repo, full=attempt > 1)
                return TreeSync(repo, self.progress).sync(snapshot.tree, self.path,
                                                          strip=common_parts(snapshot.paths))
            except DrorchError as err:
                if attempt == _ATTEMPTS:
                    raise
                self.log(f"standby {self.mirror.name}: sync of {snapshot.id[:8]} failed ({err}); "
                         "reloading the index and trying again")
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    def _repository(self) -> Repository:
        if self._repo is None:
            self._repo = open_repository(self.policy, self.target, self.keys)
        return self._repo

    def _locked(self, wait_s: float) -> ProcessLock:
        lock = ProcessLock(self.home / "standby" / f"{self.policy.metadata.name}-{self.mirror.name}.lock")
        deadline = time.monotonic() + wait_s
        while not lock.acquire(f"standby {self.mirror.name}"):
            if time.monotonic() > deadline:
                pid = lock.holder().partition(" ")[0] or "?"
                raise UsageError(f"the standby of mirror '{self.mirror.name}' is being synced by pid {pid}",
                                 hint="wait for it to finish, or stop that follower")
            time.sleep(0.05)
        return lock

    # --------------------------------------------------------------------- promote, rejoin

    def promote(self) -> Applied | None:
        """Stop following, then catch up one last time: the copy is the newest data and serves.

        Once that final catch-up finished, promoting again changes nothing: the copy
        may be serving writes, and a later snapshot must never overwrite them.
        """
        self._mark(promoted=True)
        return self.catch_up(promoting=True)

    def rejoin(self) -> None:
        """After failback: the copy follows the mirror again from its next sync."""
        self._mark(promoted=False)

    def _mark(self, *, promoted: bool) -> None:
        self.states.set_promoted(self.policy.metadata.name, self.mirror.name, path=str(self.path),
                                 host=self.standby.host, promoted=promoted)

    # -------------------------------------------------------------------------- following

    def follow(self, stop: threading.Event, *, poll_s: float = 0.5) -> None:
        """Follow until ``stop``: every ``poll_s`` (continuous) or on each cron slot.

        A promoted copy pauses the loop (reported once) until it is rejoined;
        failures are reported and retried on the next poll, never fatal.
        """
        paused = False
        cron = self.standby.cron
        while not stop.is_set():
            try:
                self.catch_up()
                paused = False
            except StandbyPromoted as err:
                if not paused:
                    self.log(f"standby {self.mirror.name}: {err}; waiting for --rejoin")
                paused = True
            except DrorchError as err:
                self.log(f"standby {self.mirror.name}: {err}; trying again")
            stop.wait(_next_wait(cron, poll_s))


def _promotion_finished(record: StandbyRecord) -> bool:
    """Promoted, and a sync was recorded after the promotion (the final catch-up)."""
    return (record.promoted_at is not None and record.applied_at is not None
            and record.snapshot is not None and record.applied_at >= record.promoted_at)


def _next_wait(cron: str | None, poll_s: float) -> float:
    if cron is None:
        return poll_s
    from croniter import croniter

    return max(0.05, float(croniter(cron, time.time()).get_next(float)) - time.time())


def _refresh_index(repo: Repository, *, full: bool) -> None:
    """Merge index files written since the last look; all of them when one was superseded (prune)."""
    current = {file_id for file_id, _ in repo.list_ids(FileType.INDEX)}
    if full or (repo.index.files - current):
        repo.load_index()
        return
    for file_id in sorted(current - repo.index.files):
        repo.index.merge_document(file_id, repo.load_unpacked(FileType.INDEX, file_id))
