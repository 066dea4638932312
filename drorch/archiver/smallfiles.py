"""Small files (below one chunk): batched, and stored by helper processes once there are many.

A small file costs more per byte than anything else a backup does: an open, a
read, a hash, a compression and a seal, each a short call. ``SmallFiles``
gathers them in batches of ``BATCH_FILES`` (or ``BATCH_BYTES``), each batch one
job with one Future. A Future, a semaphore slot and a queue hop per file cost
more than storing a 4 KiB file. The first ``helpers_after`` files are stored by
the archiver's worker threads. After that, batches go to helper processes
(``drorch.helpers.pool``), which read, hash, compress and seal them, each
under its own GIL. In threads, those per-file calls fought over one GIL:
20,000 files of 1-8 KiB took 6.3 s on two cores and 4.7 s on one.

Each file's result lands in its ``Slot``: blob IDs and size, or the error that
makes the tree skip it. Its batch's ``done`` Future says when.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from drorch.archiver.helper import Result
from drorch.helpers.pool import Helpers
from drorch.ports.progress import Progress
from drorch.repository.crypto import Key
from drorch.repository.pack import DATA
from drorch.repository.uploader import PackUploader

BATCH_FILES = 64
BATCH_BYTES = 1024 * 1024
# Small files stored before helper processes start: below this, starting them
# (~0.1 CPU-s each) costs more than they save.
HELPERS_AFTER = 1000
Stored = tuple[list[str], int]  # a file's blob IDs and the size they hold


class Slot:
    """Where a small file's stored content lands; ``done`` (its batch's) says when it has."""

    __slots__ = ("content", "done", "error", "size")

    def __init__(self, done: Future[None]) -> None:
        self.done = done
        self.content: list[str] = []
        self.size = 0
        self.error: BaseException | None = None


@dataclass
class _Batch:
    files: list[tuple[str, int, Slot]]
    done: Future[None]


class SmallFiles:
    """Small files of one archive run. ``store_one`` stores a file in this process (and reads it
    as a large file if it grew); ``submit`` runs a job on the archiver's bounded worker pool."""

    def __init__(self, key: Key, uploader: PackUploader, progress: Progress, *,
                 store_one: Callable[[str, int], Stored],
                 submit: Callable[[Callable[[Any], None], Any], object],
                 helpers: int, helpers_after: int) -> None:
        self._key, self._uploader, self._progress = key, uploader, progress
        self._store_one, self._submit = store_one, submit
        self._helpers_wanted, self._helpers_after = helpers, helpers_after
        self._helpers: Helpers[_Batch] | None = None
        self._files: list[tuple[str, int, Slot]] = []
        self._done: Future[None] = Future()
        self._bytes = self._seen = 0
        self._lock = threading.Lock()
        self.by_helpers = 0  # files read and sealed by helper processes

    def add(self, path: str, size: int) -> Slot:
        slot = Slot(self._done)
        self._files.append((path, size, slot))
        self._bytes += size
        self._seen += 1
        if len(self._files) >= BATCH_FILES or self._bytes >= BATCH_BYTES:
            self.flush()
        return slot

    def flush(self) -> None:
        """Send the batch being gathered on its way (the walk has ended, or it is full)."""
        if not self._files:
            return
        batch = _Batch(self._files, self._done)
        self._files, self._done, self._bytes = [], Future(), 0
        helpers = self._started_helpers()
        if helpers is None or not helpers.submit(batch, [(path, size) for path, size, _ in batch.files]):
            self._submit(self._store_here, batch)

    def close(self) -> None:
        if self._helpers is not None:
            self._helpers.close()

    def _started_helpers(self) -> Helpers[_Batch] | None:
        if self._helpers is None and self._helpers_wanted and self._seen >= self._helpers_after:
            try:
                self._helpers = Helpers("drorch.archiver.helper", self._key, self._helpers_wanted,
                                        self._from_helper, self._lost_by_helper)
            except OSError as err:  # no interpreter to run: the threads do it all
                self._progress.note("small files are read in-process: "
                                    f"helper processes did not start ({err})")
                self._helpers_wanted = 0
        return self._helpers

    def _store_here(self, batch: _Batch) -> None:
        self._fill(batch, lambda path, size, _index: self._store_one(path, size))

    def _lost_by_helper(self, batch: _Batch) -> None:
        """A helper died with ``batch`` unanswered: store those files in this process."""
        self._submit(self._store_here, batch)

    def _from_helper(self, batch: _Batch, results: list[Result]) -> None:
        """Runs on a helper's reader thread: pack what it sealed."""
        def stored(path: str, size: int, index: int) -> Stored:
            result = results[index]
            if result[0] == "grew":  # read it here, as any file that grew
                return self._store_one(path, size)
            return self._sealed(path, result)

        if len(results) != len(batch.files):  # a broken helper: not to be trusted with any of them
            self._lost_by_helper(batch)
            return
        self._fill(batch, stored)

    def _sealed(self, path: str, result: Result) -> Stored:
        if result[0] == "error":
            raise OSError(result[1], result[2], path)
        with self._lock:
            self.by_helpers += 1
        if result[0] == "empty":
            self._progress.advance(0, files=1)
            return [], 0
        _kind, blob_id, sealed, uncompressed_length, plain_length, incompressible = result
        self._uploader.add_sealed(DATA, blob_id, sealed, uncompressed_length, plain_length, incompressible)
        self._progress.advance(plain_length, files=1)
        return [blob_id], plain_length

    @staticmethod
    def _fill(batch: _Batch, stored: Callable[[str, int, int], Stored]) -> None:
        """Each file's slot from ``stored(path, size, index)``, its error if that raised; then done."""
        try:
            for index, (path, size, slot) in enumerate(batch.files):
                try:
                    slot.content, slot.size = stored(path, size, index)
                except BaseException as err:  # noqa: BLE001 - the tree reports it for this file
                    slot.error = err
        finally:
            batch.done.set_result(None)
