"""Writing each planned pack's blobs into the restored files: here, or in helper processes.

Every pack is read once (one ranged read from its first to its last needed blob)
and each blob is authenticated, decrypted, decompressed and hash-checked before it
is written at its offset in every file that uses it (``write_blobs``). A file's
count of pending writes falls only when a blob was written, so a file is complete
only when every blob of it was (``drorch.restore.damage.Plan``).

Packs of many small blobs go to helper processes (``drorch.restore.helper``), one
per core, each with a GIL of its own, once a restore has enough of them. In threads
the per-blob Python ran one blob at a time: the packs of 888 MiB with 20,000 small
files took 2.7 s to write with one thread and with two; with helpers, 3.1-3.7 s
with one and 2.1-2.2 s with two. Packs of large chunks stay with the threads,
whose C calls release the GIL.
The parent reads each pack from the store (the helpers never hold store
credentials) and hands its bytes, the blobs and where they go to the least busy
helper. A helper that dies loses nothing: the parent rewrites each pack it had
not answered (writes at fixed offsets, so a half-written pack is simply written
again). A helper that cannot write (a full disk) fails the restore as a thread
would.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import queue
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from drorch.helpers.pool import Helpers
from drorch.ports.errors import ObjectNotFound
from drorch.ports.progress import Progress
from drorch.ports.store import get_into, reads_into
from drorch.repository.buffers import BufferPool
from drorch.repository.crypto import AuthenticationFailed, Key
from drorch.repository.layout import FileType, object_name
from drorch.repository.pack import DATA, PackedBlob
from drorch.repository.repository import Repository, unseal_blob
from drorch.restore import fs as restore_fs
from drorch.restore.damage import Plan
from drorch.restore.fs import DirFds

# Where a sealed blob starts in the bytes read, its length, ID and uncompressed length
# (0: stored uncompressed), and every place it goes: (directory, file name, offset, and
# for a whole file, the metadata its writer gives it once written; else None).
Place = tuple[int, str, int, "dict[str, Any] | None"]
BlobWrite = tuple[int, int, str, int, list[Place]]
NotSet = tuple[int, str, list[str]]  # a whole file's (directory, name, metadata not set)
Places = dict[PackedBlob, list[tuple[int, int]]]  # blob -> (file index, offset) in the plan
# A pack with fewer blobs than this (large chunks) is written by the threads: the C code
# that does the work for a large blob releases the GIL, so threads run in parallel,
# and handing the pack over would only cost a copy.
HELPER_BLOBS_PER_PACK = 64
# Helpers start only with this many blobs in such packs: below, starting them (~0.1 CPU-s
# each) costs more than they save.
HELPERS_AFTER_BLOBS = 1000
# Packs reach helpers through slots of one shared memory file: pickling 16 MiB into
# a pipe and out again cost more CPU than the helpers saved. A full pack (16 MiB plus
# the largest chunk) fits a slot; a larger read goes through the pipe.
SLOT_BYTES = 24 * 1024 * 1024
# Slots beyond one per helper: a spare lets the next pack be read while every helper is
# busy, which hides a cloud store's latency. From a local disk (a store that reads into
# memory) the read takes milliseconds, and a spare only cost 17 MiB and time: the packs of
# the 888 MiB set took 1.82-2.13 s to write with one, 1.49-1.84 s without (tmpfs target).
SPARE_SLOTS = 1
SPARE_SLOTS_LOCAL = 0
# What the threads read packs into from a store that reads into memory (a local disk):
# reused, as fresh 16 MiB ``bytes`` per pack kept the allocator's arenas ~50 MiB above
# what was in use. A cloud SDK returns bytes anyway; copying them here would only add.
_READS = BufferPool(SLOT_BYTES, keep=4)


def _span(ordered: list[PackedBlob]) -> int:
    """Bytes from the first needed blob of a pack to the end of the last."""
    return max(b.offset + b.length for b in ordered) - ordered[0].offset


def write_blobs(key: Key, data: memoryview, blobs: list[BlobWrite], fds: DirFds,
                warnings: list[NotSet]) -> Iterator[bool]:
    """For each blob in turn, whether it was intact and is now written at every place.

    A blob that is cut short, does not authenticate or does not match its ID is written
    nowhere. A place with metadata is a whole file: made, written and finished here
    (``fs.write_whole``), what could not be set added to ``warnings``. OSError (a full
    disk, a link planted where a directory was) propagates.
    """
    as_root = os.geteuid() == 0
    with _OpenFiles(fds) as files:
        for start, length, blob_id, uncompressed_length, places in blobs:
            sealed = data[start:start + length]
            try:
                if len(sealed) != length:
                    raise AuthenticationFailed("the pack is missing or truncated")
                plain = unseal_blob(key, sealed, blob_id, uncompressed_length)
            except AuthenticationFailed:
                yield False
                continue
            for dir_index, name, offset, finish in places:
                if finish is None:
                    restore_fs.write_all(files.fd(dir_index, name), plain, offset)
                else:
                    failed = restore_fs.write_whole(fds.fd(dir_index), name, plain, finish, as_root)
                    if failed:
                        warnings.append((dir_index, name, failed))
            yield True


@dataclass
class _Sent:
    """A pack handed to a helper; ``answered`` is True once recorded, False if it was lost."""

    pack_id: str
    places: Places
    ordered: list[PackedBlob]
    slot: int | None = None  # of the shared memory, while the helper may read it
    answered: Future[bool] = field(default_factory=Future)


class PackWriter:
    """Writes the plan's packs below ``root_fd``, on ``pool``'s threads and, once
    ``start_helpers`` found the plan large enough, in ``helpers`` processes."""

    def __init__(self, repo: Repository, plan: Plan, root_fd: int, progress: Progress, *,
                 helpers: int, helpers_after: int | None = None) -> None:
        self._repo, self._plan, self._root_fd = repo, plan, root_fd
        self._progress = progress
        self._helpers_wanted, self._helpers_after = helpers, helpers_after
        self._helpers: Helpers[_Sent] | None = None
        self._slots: SharedSlots | None = None
        self._start_failed = False
        self._sent: list[_Sent] = []
        self.blobs_by_helpers = 0
        self.warnings: list[NotSet] = []  # appended to from several threads (list.append is atomic)

    def start_helpers(self, *, ahead: bool = False) -> None:
        """Start the helpers if the plan is worth them; when they cannot start, the threads do
        it all. With ``ahead``, before the plan is made, if the repository holds enough blobs
        in packs of small ones: the ~0.13 CPU-s each takes to start then runs while the walk
        keeps one core busy, not while both are writing. Once planned, helpers started ahead
        for a plan not worth them are stopped again."""
        if ahead:
            blobs = self._repo.index.in_packs_of(DATA, HELPER_BLOBS_PER_PACK)
        else:
            blobs = sum(len(places) for places in self._plan.writes.values()
                        if len(places) >= HELPER_BLOBS_PER_PACK)
        wanted = HELPERS_AFTER_BLOBS if self._helpers_after is None else self._helpers_after
        worth = bool(self._helpers_wanted) and blobs >= wanted
        if not worth:
            self.close()
        elif self._helpers is None and not self._start_failed:
            self._start_helpers()

    def _start_helpers(self) -> None:
        """Once: helpers that did not start ahead are not tried again after the walk."""
        spare = SPARE_SLOTS_LOCAL if reads_into(self._repo.store) else SPARE_SLOTS
        self._slots = SharedSlots.create(self._helpers_wanted + spare)
        fds = (self._root_fd,) + ((self._slots.fd,) if self._slots else ())
        try:
            self._helpers = Helpers("drorch.restore.helper", self._repo.key, self._helpers_wanted,
                                    self._answered, self._lost, args=tuple(map(str, fds)), pass_fds=fds)
        except OSError as err:
            self._start_failed = True
            self.close()  # the slots, which nobody will read
            self._progress.note(f"packs are written in-process: helper processes did not start ({err})")

    def write(self, pool: ThreadPoolExecutor) -> None:
        """Every pack, each read once, on ``pool``; returns when every blob is written or found damaged."""
        for future in [pool.submit(self._pack, pack_id, places)
                       for pack_id, places in self._plan.writes.items()]:
            future.result()
        for sent in self._sent:
            if sent.answered.result():
                self.blobs_by_helpers += len(sent.ordered)
            else:  # its helper died: written here, again if half done
                self._write_here(sent.pack_id, sent.places, sent.ordered)

    def close(self) -> None:
        """Stop the helpers, after they finished what they were sent (again: nothing to do)."""
        helpers, slots, self._helpers, self._slots = self._helpers, self._slots, None, None
        if helpers is not None:
            helpers.close()
        if slots is not None:
            slots.close()

    def _pack(self, pack_id: str, places: Places) -> None:
        ordered = sorted(places, key=lambda b: b.offset)
        if self._helpers is None or len(ordered) < HELPER_BLOBS_PER_PACK:
            self._write_here(pack_id, places, ordered)
            return
        sent = _Sent(pack_id, places, ordered)
        inline: bytes | None = None
        if self._slots is not None and _span(ordered) <= SLOT_BYTES:
            sent.slot = self._slots.take()
            try:
                length, writes = self._read(pack_id, places, ordered, self._slots.view(sent.slot))
            except BaseException:  # the store failed: the restore fails, but the slot is not lost
                self._free_slot(sent)
                raise
        else:
            data, writes = self._read_bytes(pack_id, places, ordered)
            inline, length = data, len(data)
        chains = self._plan.dirs.chains({dir_index for *_, spots in writes for dir_index, *_ in spots})
        self._sent.append(sent)
        if not self._helpers.submit(sent, (chains, inline, sent.slot, length, writes)):
            self._done_with(sent, False)  # every helper has died

    def _read(self, pack_id: str, places: Places, ordered: list[PackedBlob], into: memoryview
              ) -> tuple[int, list[BlobWrite]]:
        """Read the pack from its first to its last needed blob into ``into``; the count read
        (short or 0 for a truncated or missing pack: its blobs then fail to authenticate,
        and each is reported) and where each blob goes."""
        start = ordered[0].offset
        try:
            length = get_into(self._repo.store, object_name(FileType.PACK, pack_id), start,
                              into[:_span(ordered)])
        except ObjectNotFound:
            length = 0
        return length, self._writes(places, ordered)

    def _read_bytes(self, pack_id: str, places: Places, ordered: list[PackedBlob]
                    ) -> tuple[bytes, list[BlobWrite]]:
        """``_read`` into new memory, for a range larger than a slot."""
        try:
            data = self._repo.store.get(object_name(FileType.PACK, pack_id), ordered[0].offset,
                                        _span(ordered))
        except ObjectNotFound:
            data = b""
        return data, self._writes(places, ordered)

    def _writes(self, places: Places, ordered: list[PackedBlob]) -> list[BlobWrite]:
        start, files = ordered[0].offset, self._plan.files
        return [(b.offset - start, b.length, b.id, b.uncompressed_length,
                 [(files[i].dir, files[i].name, offset, files[i].node if files[i].whole else None)
                  for i, offset in places[b]]) for b in ordered]

    def _write_here(self, pack_id: str, places: Places, ordered: list[PackedBlob]) -> None:
        if _span(ordered) <= SLOT_BYTES and reads_into(self._repo.store):
            buffer = _READS.get()
            length, writes = self._read(pack_id, places, ordered, buffer)
            data = buffer[:length]
        else:
            raw, writes = self._read_bytes(pack_id, places, ordered)
            data = memoryview(raw)
        with DirFds(self._root_fd, self._plan.dirs) as fds:
            written = write_blobs(self._repo.key, data, writes, fds, self.warnings)
            for blob, intact in zip(ordered, written, strict=False):
                self._record(blob, places[blob], intact)

    def _record(self, blob: PackedBlob, spots: list[tuple[int, int]], intact: bool) -> None:
        for file_index, _offset in spots:
            if intact:
                self._plan.written(file_index)
            else:
                self._plan.blob_damaged(file_index, blob.id)
        self._progress.advance(blob.plain_length * len(spots))

    def _answered(self, sent: _Sent, answer: Any) -> None:
        """A helper's answer (on its reader thread): ``("written", a flag per blob, warnings)``,
        or ``("error", ...)``, the OSError it hit."""
        try:
            if isinstance(answer, tuple) and answer[:1] == ("error",):
                _, number, strerror, filename = answer
                raise OSError(number, strerror, filename)
            if not _well_formed(answer, len(sent.ordered)):
                self._done_with(sent, False)  # garbled: written here instead
                return
            _, flags, warnings = answer
            for blob, intact in zip(sent.ordered, flags, strict=True):
                self._record(blob, sent.places[blob], intact is True)
            self.warnings.extend(warnings)
        except BaseException as err:  # noqa: BLE001  (the restore's thread raises it)
            self._free_slot(sent)
            sent.answered.set_exception(err)
            return
        self._done_with(sent, True)

    def _lost(self, sent: _Sent) -> None:
        self._done_with(sent, False)

    def _done_with(self, sent: _Sent, answered: bool) -> None:
        self._free_slot(sent)
        with contextlib.suppress(Exception):  # already answered: nothing to redo
            sent.answered.set_result(answered)

    def _free_slot(self, sent: _Sent) -> None:
        if sent.slot is not None and self._slots is not None:
            self._slots.free(sent.slot)
            sent.slot = None


def _well_formed(answer: Any, blobs: int) -> bool:
    return (isinstance(answer, tuple) and len(answer) == 3 and answer[0] == "written"
            and isinstance(answer[1], list) and len(answer[1]) == blobs
            and isinstance(answer[2], list)
            and all(isinstance(w, tuple) and len(w) == 3 for w in answer[2]))


class SharedSlots:
    """Slots of ``SLOT_BYTES`` in one memory file (``memfd``) shared with the helpers: the
    parent copies a pack's bytes into a free slot, a helper reads them there in place."""

    def __init__(self, fd: int, count: int) -> None:
        self.fd = fd
        self._memory = mmap.mmap(fd, count * SLOT_BYTES)
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(count):
            self._free.put(slot)

    @classmethod
    def create(cls, count: int) -> SharedSlots | None:
        """None where memory files are not available: packs then go through the pipes."""
        try:
            fd = os.memfd_create("drorch-restore-packs")
        except (AttributeError, OSError):
            return None
        try:
            os.ftruncate(fd, count * SLOT_BYTES)  # pages are only taken when written
            return cls(fd, count)
        except OSError:
            os.close(fd)
            return None

    def take(self) -> int:
        """A free slot, for the caller to fill (``view``); waits while every slot is in use."""
        return self._free.get()

    def view(self, slot: int) -> memoryview:
        return memoryview(self._memory)[slot * SLOT_BYTES : (slot + 1) * SLOT_BYTES]

    def free(self, slot: int) -> None:
        self._free.put(slot)

    def close(self) -> None:
        with contextlib.suppress(BufferError):  # a view held by a failure's traceback: freed with it
            self._memory.close()
        os.close(self.fd)


def attach_slots(fd: int) -> memoryview:
    """A helper's view of the parent's ``SharedSlots``."""
    return memoryview(mmap.mmap(fd, os.fstat(fd).st_size))


def slot_view(memory: memoryview, slot: int, length: int) -> memoryview:
    return memory[slot * SLOT_BYTES : slot * SLOT_BYTES + length]


class _OpenFiles:
    """Keeps the last written file open: a pack's blobs of one file are usually adjacent."""

    def __init__(self, fds: DirFds) -> None:
        self._fds = fds
        self._at: tuple[int, str] | None = None
        self._fd = -1

    def fd(self, dir_index: int, name: str) -> int:
        if self._at != (dir_index, name):
            self.close()
            self._fd = os.open(name, restore_fs.WRITE_FLAGS, dir_fd=self._fds.fd(dir_index))
            self._at = (dir_index, name)
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd, self._at = -1, None

    def __enter__(self) -> _OpenFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
