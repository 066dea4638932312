"""Repository locks, compatible with restic's ``locks/`` files.

Any number of shared locks, or one exclusive lock and nothing else, as in
restic: restore and verify take shared locks, so they run while a backup does;
forget and prune take an exclusive one. ``apply`` holds a shared lock marked as
a writer's (``drorch_writer``, which restic ignores): two writers exclude each
other, readers do not. For retention it turns its lock exclusive for a moment
(``exclusively``) and shared again. A lock is
stale when it is older than 30 minutes (holders refresh every 5) or, on this
host, when its process is gone; stale locks are removed, so a killed apply
never blocks the next one. After creating its lock a process re-reads the
others, so two racing processes cannot both believe they hold an exclusive lock.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    writer: bool = False

    def is_stale(self) -> bool:
        if now_ns() - self.time_ns > STALE_AFTER_NS:
            return True
        if self.hostname != socket.gethostname():
            return False
        return _process_gone(self.pid)

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
        try:
            locks.append(LockInfo(lock_id, bool(doc.get("exclusive")), str(doc.get("hostname", "")),
                                  int(doc.get("pid", 0)), parse_ns(doc["time"]),
                                  bool(doc.get("drorch_writer"))))
        except (KeyError, ValueError, TypeError, AttributeError):
            continue  # not a lock document; it blocks nothing (restic would say it is damaged)
    return locks


class RepositoryLock:
    """A held lock; refreshed in the background until ``release``."""

    def __init__(self, repo: Repository, exclusive: bool, *, writer: bool = False) -> None:
        self.repo = repo
        self.exclusive = exclusive
        self.writer = writer  # excludes other writers, not readers
        self.id = ""
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def _write(self) -> None:
        doc = {"time": format_ns(now_ns()), "exclusive": self.exclusive,
               "hostname": socket.gethostname(), "username": getpass.getuser(),
               "pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}
        if self.writer:
            doc["drorch_writer"] = True
        with self._write_lock:  # the refresher thread writes too
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
            elif self.exclusive or lock.exclusive or (self.writer and lock.writer):
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
                self._busy()
            time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
        self._stop.clear()
        self._refresher = threading.Thread(target=self._refresh, daemon=True, name="lock-refresh")
        self._refresher.start()
        return self

    def _busy(self) -> None:
        holder = self._conflicts()
        detail = holder[0].describe() if holder else "a lock that just appeared"
        raise RepositoryLocked(
            f"the repository of target {self.repo.name!r} is busy: {detail}",
            hint="wait for that run to finish; a lock of a dead process is removed automatically",
        )

    @contextlib.contextmanager
    def exclusively(self, wait_s: float = 0.0) -> Iterator[None]:
        """Hold this (shared) lock exclusively inside the block, shared again after it.

        Raises RepositoryLocked, still holding the shared lock, when other holders
        (a restore, a verify) stay past ``wait_s``. The exclusive lock file is written
        first, so no new reader starts while the current ones finish.
        """
        if self.exclusive:
            yield
            return
        self.exclusive = True
        try:
            self._write()
            deadline = time.monotonic() + wait_s
            while self._conflicts():
                if time.monotonic() >= deadline:
                    self._busy()
                time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
            yield
        finally:
            self.exclusive = False
            if self.id:
                self._write()

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


def _process_gone(pid: int) -> bool:
    """True when no process ``pid`` runs here. A zombie counts as gone: it holds nothing, and
    its parent may never reap it (a job whose parent was killed, under a PID 1 that does not
    reap, as in many containers)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # not Linux, or it ended just now: the next look decides
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]
