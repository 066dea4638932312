"""Consistency around a source's snapshot: pre/post hooks and platform snapshots.

``consistent(source, mirror)`` is a context manager that yields the path to
read. The order, per ``consistency.snapshot``:

- ``none``: ``pre`` → read the source → ``post``.
- ``lvm`` / ``zfs`` / ``btrfs``: ``pre`` (flush, freeze) → platform snapshot →
  ``post`` (thaw: the application is quiesced only for the instant of the
  snapshot) → read the snapshot → remove the snapshot.
- ``command``: ``pre`` takes the snapshot and prints the path to read on the
  last line of its stdout → read it → ``post`` releases it (it gets the path in
  ``$DRORCH_SNAPSHOT_PATH``).

Guarantees:

- A failing ``pre`` (non-zero exit, timeout, not found) fails the mirror: no
  snapshot is taken or recorded. ``post`` still runs.
- ``post`` runs exactly once, whatever happened: a failed ``pre``, a failed
  snapshot, a failed read, or SIGTERM (turned into an exception while the
  context is open, so cleanup runs before the process exits). It learns the
  outcome from ``$DRORCH_RESULT`` (``ok`` or ``failed``).
- The platform snapshot is always removed. If removing it fails after a good
  read, the mirror fails anyway, naming the snapshot to remove by hand: a
  forgotten LVM snapshot fills up and slows the origin.
- Hooks and tools share ``consistency.timeout``; their output is captured and
  its last lines end the error sentence.

Every hook sees ``DRORCH_MIRROR``, ``DRORCH_SOURCE``, ``DRORCH_SOURCE_PATH`` and
``DRORCH_SNAPSHOT`` (the method) in its environment, what ``consistency.env``
lists, and otherwise only PATH, HOME, LANG, LC_ALL, TZ and TMPDIR: never the
repository key or anything else of drorch's own environment (``hooks``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from drorch.policy import Source
from drorch.ports.errors import DrorchError, SourceError, Terminated
from drorch.ports.progress import NoProgress, Progress
from drorch.sources import hooks
from drorch.sources.snapshots import Snapshotter, Taken


@contextlib.contextmanager
def consistent(source: Source, mirror: str, progress: Progress | None = None) -> Iterator[Path]:
    """Yield the path to read for ``source``; see the module docstring for the order and guarantees."""
    progress = progress or NoProgress()
    settings = source.consistency
    timeout_s = settings.timeout.total_seconds()
    env = {**settings.env, "DRORCH_MIRROR": mirror, "DRORCH_SOURCE": source.name,
           "DRORCH_SOURCE_PATH": str(source.path), "DRORCH_SNAPSHOT": settings.snapshot}
    if settings.snapshot == "command" and not settings.pre:
        raise SourceError(f"source {source.name!r}: consistency.snapshot: command needs a pre hook that "
                          "prints the path to read", hint="add consistency.pre, or choose another method")
    post_pending = bool(settings.post)
    taken: Taken | None = None

    def post(result: str) -> None:
        nonlocal post_pending
        if post_pending and settings.post:
            post_pending = False
            hooks.run(settings.post, what="post hook", timeout_s=timeout_s,
                      env={**env, "DRORCH_RESULT": result})

    with _sigterm_raises():
        try:
            read_path = source.path
            if settings.pre:
                done = hooks.run(settings.pre, what="pre hook", timeout_s=timeout_s, env=env)
                if settings.snapshot == "command":
                    read_path = _printed_path(done.stdout, settings.pre[0])
                    env["DRORCH_SNAPSHOT_PATH"] = str(read_path)
            if settings.snapshot in ("lvm", "zfs", "btrfs"):
                taken = Snapshotter(settings.snapshot, mirror, timeout_s).take(source.path, source.type)
                read_path = taken.read_path
                env["DRORCH_SNAPSHOT_PATH"] = str(read_path)
                progress.note(f"took {taken.description}")
                post("ok")
            yield read_path
        except BaseException:
            _cleanup(post, "failed", taken, progress, raise_first=False)
            raise
        _cleanup(post, "ok", taken, progress, raise_first=True)


def _cleanup(post: Callable[[str], None], result: str, taken: Taken | None, progress: Progress,
             raise_first: bool) -> None:
    """Run post (if still due) and remove the snapshot; both always attempted, SIGTERM held off."""
    failures: list[DrorchError] = []
    with _sigterm_deferred():
        try:
            post(result)
        except DrorchError as err:
            failures.append(err)
        if taken is not None:
            try:
                taken.release()
            except DrorchError as err:
                failures.append(SourceError(f"could not remove the {taken.description}: {err.message}",
                                            hint="remove it by hand; drorch names its snapshots drorch-*"))
    if failures and raise_first:
        raise failures[0]
    for failure in failures:  # an earlier error is already on its way to the operator
        progress.note(str(failure))


def _printed_path(stdout: str, program: str) -> Path:
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise SourceError(f"the pre hook `{program}` printed no path to read",
                          hint="with snapshot: command, the pre hook must print the snapshot's path "
                               "on the last line of its output")
    path = Path(lines[-1])
    if not path.is_absolute():
        raise SourceError(f"the pre hook `{program}` printed {lines[-1]!r}, not an absolute path")
    return path


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While open, SIGTERM raises ``Terminated`` in the main thread so cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated("terminated (SIGTERM) while reading a source; hooks and snapshots were cleaned up")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _sigterm_deferred() -> Iterator[None]:
    """While cleanup runs, a SIGTERM is remembered and raised afterwards instead of interrupting it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
    if received:
        raise Terminated("terminated (SIGTERM) during cleanup; hooks and snapshots were cleaned up")
