"""``schedule: continuous``: snapshot a mirror within seconds of its source changing.

File events (inotify through watchdog; a polling observer where the kernel has
none) mark the mirror dirty; a snapshot starts once the source has been quiet
for ``quiet_s`` or ``max_delay_s`` after the first unsaved change, whichever
comes first, so a burst of writes becomes one snapshot and a steady trickle
still gets one every ``max_delay_s``. Changes made while a snapshot runs
trigger another one after it. Only writes count (creates, modifications,
deletes, moves, closes after writing); reads, including the snapshot's own,
do not.

A source that disappears (deleted, unmounted) is reported once, in one
sentence, and watched for: nothing is snapshotted while it is gone (an empty
snapshot would look like data loss), and it is snapshotted when it returns.

At start the mirror is snapshotted once: changes made while no watcher ran
(the scheduler was down, the host rebooted) have no event, and the
incremental snapshot picks them up. While idle, the watcher reports through
``confirm(clean_since, now)`` every ``confirm_every_s`` that no write has
arrived since the snapshot started at ``clean_since`` (``captured.py``), so
``status`` does not count an unchanged source as a breach of its RPO.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drorch.schedule.jobs import Job

__all__ = ["ContinuousMirror"]

_WRITES = {"created", "modified", "deleted", "moved", "closed"}


class ContinuousMirror:
    """Watches ``source`` and calls ``trigger(job, why)`` (False: busy, try again later)."""

    def __init__(self, job: Job, source: Path, trigger: Callable[[Job, str], bool], *,
                 log: Callable[[str], None] = print, quiet_s: float = 0.5, max_delay_s: float = 5.0,
                 poll_s: float = 1.0, confirm: Callable[[float, float], None] | None = None,
                 confirm_every_s: float = 10.0) -> None:
        self.job, self.source, self.trigger, self.log = job, source, trigger, log
        self.quiet_s, self.max_delay_s, self.poll_s = quiet_s, max_delay_s, poll_s
        self.confirm, self.confirm_every_s = confirm, confirm_every_s
        self._clean_since: float | None = None  # wall time of the snapshot holding every change seen
        self._confirmed = 0.0  # monotonic time of the last confirmation
        self._at_start = True  # the first snapshot is the start's, not an event's
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._first: float | None = None  # monotonic time of the first unsaved change
        self._latest = 0.0
        self._changes = 0
        self._observer: Any = None
        self._inode: int | None = None
        self._missing_reported = False
        self._thread = threading.Thread(target=self._loop, name=f"drorch-watch-{job.name}", daemon=True)

    # ------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Watch, and snapshot once now: what changed while nobody watched has no event."""
        self.changed()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5)
        self._unwatch()

    # --------------------------------------------------------------------------- events

    def changed(self, count: int = 1) -> None:
        """A write happened in the source (called by the observer, or by tests)."""
        now = time.monotonic()
        with self._lock:
            if self._first is None:
                self._first = now
            self._latest = now
            self._changes += count
            self._clean_since = None
        self._wake.set()

    def _dispatch(self, event: Any) -> None:
        if event.event_type in _WRITES and not (event.is_directory and event.event_type == "modified"):
            self.changed()

    # ----------------------------------------------------------------------------- loop

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._watch_source()
            wait = self._due_in()
            if wait is not None and wait <= 0:
                self._snapshot()
                continue
            if wait is None:
                self._confirm_idle()
            self._wake.clear()
            self._wake.wait(self.poll_s if wait is None else min(wait, self.poll_s))

    def _due_in(self) -> float | None:
        with self._lock:
            if self._first is None:
                return None
            now = time.monotonic()
            return min(self._latest + self.quiet_s, self._first + self.max_delay_s) - now

    def _snapshot(self) -> None:
        with self._lock:
            changes, first = self._changes, self._first
            self._first, self._changes = None, 0
        if self._inode is None:
            return  # the source is gone: its return counts as a change (_watch_source)
        why = f"{changes} change(s) in {self.source}"
        if self._at_start:
            why = f"start: capturing what changed in {self.source} while nothing watched it"
        started = time.time()
        if not self.trigger(self.job, why):
            with self._lock:  # the previous snapshot is still running: keep them for the next one
                self._first = first if self._first is None else min(self._first, first or self._first)
                self._changes += changes
            self._stop.wait(min(self.quiet_s, 0.2))
            return
        self._at_start = False
        with self._lock:
            if self._first is None:  # no write since the trigger: this snapshot holds them all
                self._clean_since = started

    def _confirm_idle(self) -> None:
        """Tell the ledger that no write arrived since ``_clean_since`` (module docstring)."""
        if self.confirm is None or self._observer is None:
            return
        with self._lock:
            clean_since = self._clean_since
        now = time.monotonic()
        if clean_since is None or now - self._confirmed < self.confirm_every_s:
            return
        try:
            self.confirm(clean_since, time.time())
        except Exception as err:  # noqa: BLE001 - a journal failure must never stop the watcher
            self.log(f"{self.job.key}: could not record that the source is unchanged: {err}")
        self._confirmed = now

    def _watch_source(self) -> None:
        try:
            inode = os.stat(self.source).st_ino if self.source.is_dir() else None
        except OSError:
            inode = None
        if inode == self._inode and (inode is None or self._observer is not None):
            return
        self._unwatch()
        if inode is None:
            if not self._missing_reported:
                self.log(f"{self.job.key}: source {self.source} disappeared; nothing is snapshotted until it "
                         "is back, so the RPO will be breached")
                self._missing_reported = True
            self._inode = None
            return
        was_missing = self._missing_reported or self._inode is not None
        self._inode = inode
        self._observer = _observe(self.source, self._dispatch)
        if was_missing:
            self.log(f"{self.job.key}: source {self.source} is back; snapshotting it")
            self._missing_reported = False
            self.changed()

    def _unwatch(self) -> None:
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(2)
            except Exception:  # noqa: BLE001 - a watch on a vanished directory may already be dead
                pass
            self._observer = None


def _observe(path: Path, dispatch: Callable[[Any], None]) -> Any:
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class _Handler(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            dispatch(event)

    observer = Observer()
    observer.schedule(_Handler(), str(path), recursive=True)
    observer.daemon = True
    observer.start()
    return observer
