"""Repository locks, compatible with restic's ``locks/`` files.

Any number of shared locks, or one exclusive lock and nothing else. A lock is
stale when it is older than 30 minutes (holders refresh every 5) or, on this
host, when its process is gone; stale locks are removed, so a killed apply
never blocks the next one. After creating its lock a process re-reads the
others, so two racing processes cannot both believe they hold an exclusive lock.
"""

from __future__ import annotations

import getpass
import os
import random
import socket
import threading
import time
from dataclasses import dataclass

from drorch.ports.errors import IntegrityError, ObjectNotFound, RepositoryLocked
from drorch.repository.layout import FileType, object_name
from drorch.repository.repository import Repository
from drorch.repository.timefmt import format_ns, now_ns, parse_ns

STALE_AFTER_NS = 30 * 60 * 1_000_000_000
REFRESH_EVERY_S = 5 * 60
RACE_RETRIES = 3


@dataclass(frozen=True)
class LockInfo:
    id: str
    exclusive: bool
    hostname: str
    pid: int
    time_ns: int

    def is_stale(self) -> bool:
        if now_ns() - self.time_ns > STALE_AFTER_NS:
            return True
        if self.hostname != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def describe(self) -> str:
        kind = "an exclusive" if self.exclusive else "a shared"
        return (f"{kind} lock held by PID {self.pid} on {self.hostname} since "
                f"{format_ns(self.time_ns)[:19]}Z")


def _read_locks(repo: Repository) -> list[LockInfo]:
    locks = []
    for lock_id, _ in repo.list_ids(FileType.LOCK):
        try:
            doc = repo.load_unpacked(FileType.LOCK, lock_id)
        except (ObjectNotFound, IntegrityError):
            continue  # removed meanwhile, or written by a process that died mid-write
        locks.append(LockInfo(lock_id, bool(doc.get("exclusive")), doc.get("hostname", ""),
                              int(doc.get("pid", 0)), parse_ns(doc["time"])))
    return locks


class RepositoryLock:
    """A held lock; refreshed in the background until ``release``."""

    def __init__(self, repo: Repository, exclusive: bool) -> None:
        self.repo = repo
        self.exclusive = exclusive
        self.id = ""
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def _write(self) -> None:
        doc = {"time": format_ns(now_ns()), "exclusive": self.exclusive,
               "hostname": socket.gethostname(), "username": getpass.getuser(),
               "pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}
        old, self.id = self.id, self.repo.save_unpacked(FileType.LOCK, doc)
        if old:
            self.repo.store.delete(object_name(FileType.LOCK, old))

    def _conflicts(self) -> list[LockInfo]:
        conflicts = []
        for lock in _read_locks(self.repo):
            if lock.id == self.id:
                continue
            if lock.is_stale():
                self.repo.store.delete(object_name(FileType.LOCK, lock.id))
            elif self.exclusive or lock.exclusive:
                conflicts.append(lock)
        return conflicts

    def acquire(self, wait_s: float = 0.0) -> RepositoryLock:
        """Take the lock, waiting up to ``wait_s`` seconds for conflicting holders to finish."""
        deadline = time.monotonic() + wait_s
        races = 0
        while True:
            if not self._conflicts():
                self._write()
                if not self._conflicts():
                    break
                self.release()
                races += 1
                if races <= RACE_RETRIES:  # both wrote at once: back off randomly, try again
                    time.sleep(random.uniform(0.05, 0.5))
                    continue
            if time.monotonic() >= deadline:
                holder = self._conflicts()
                detail = holder[0].describe() if holder else "a lock that just appeared"
                raise RepositoryLocked(
                    f"the repository of target {self.repo.name!r} is busy: {detail}",
                    hint="wait for that run to finish; a lock of a dead process is removed "
                         "automatically",
                )
            time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
        self._stop.clear()
        self._refresher = threading.Thread(target=self._refresh, daemon=True, name="lock-refresh")
        self._refresher.start()
        return self

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_EVERY_S):
            self._write()

    def release(self) -> None:
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join()
            self._refresher = None
        if self.id:
            self.repo.store.delete(object_name(FileType.LOCK, self.id))
            self.id = ""

    def __enter__(self) -> RepositoryLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
