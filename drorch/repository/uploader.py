"""Saving blobs: dedup, compress, encrypt, pack and upload, from many threads at once.

``save`` is called from worker threads; hashing, compression and encryption run
in the caller's thread (hashlib, zstandard and OpenSSL release the GIL), only
claiming a place in the open pack holds a lock: the blob is then sealed straight
into that place, so no blob is copied into its pack. ``add_sealed`` takes a blob another
process has already compressed and sealed (the archiver's helpers) and copies it into
its place. Full packs upload on a small thread pool;
at most ``max_pending_packs`` wait in memory, so a slow store slows the producers
instead of filling RAM. Nothing a pack holds is visible to readers until
``flush`` has returned and the caller has written an index for it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from drorch.repository.crypto import OVERHEAD
from drorch.repository.layout import FileType, object_name
from drorch.repository.pack import (
    DATA,
    HEADER_ROOM,
    PACK_CAPACITY,
    TREE,
    PackBuilder,
    PackedBlob,
    trim_buffers,
)
from drorch.repository.repository import Repository, encode_blob


class PackUploader:
    def __init__(self, repo: Repository, upload_workers: int = 2, max_pending_packs: int = 4) -> None:
        self.repo = repo
        self._lock = threading.Lock()
        self._open = {DATA: PackBuilder(DATA), TREE: PackBuilder(TREE)}
        self._in_flight: set[tuple[str, str]] = set()
        self._slots = threading.BoundedSemaphore(max_pending_packs)
        self._pool = ThreadPoolExecutor(upload_workers, thread_name_prefix="upload")
        self._uploads: list[Future[None]] = []
        self._failure: BaseException | None = None  # first upload error; stops new saves
        self.written: dict[str, list[PackedBlob]] = {}
        self.new_bytes = 0  # plaintext bytes of blobs that were not in the repository yet
        self.stored_bytes = 0  # bytes they take in packs (compressed and sealed)
        # New file data that zstd could not shrink by 10%: the anomaly detector's ciphertext signal.
        self.incompressible_bytes = 0

    def save(self, blob_type: str, data: bytes | memoryview, blob_id: str | None = None) -> str:
        """Store a blob unless the repository already has it; returns its ID."""
        blob_id = blob_id or hashlib.sha256(data).hexdigest()
        if not self._claim(blob_type, blob_id):
            return blob_id
        payload, uncompressed_length, incompressible = encode_blob(data)
        self._place(blob_type, blob_id, len(payload) + OVERHEAD, uncompressed_length, len(data),
                    incompressible, lambda place: self.repo.key.seal_into(payload, place))
        return blob_id

    def add_sealed(self, blob_type: str, blob_id: str, sealed: bytes | bytearray, uncompressed_length: int,
                   plain_length: int, incompressible: bool) -> str:
        """Store a blob another process has already compressed and sealed with this repository's
        key (the archiver's helpers); dropped, like ``save``, when the repository has it."""
        if self._claim(blob_type, blob_id):
            self._place(blob_type, blob_id, len(sealed), uncompressed_length, plain_length,
                        incompressible, lambda place: place.__setitem__(slice(None), sealed))
        return blob_id

    def _claim(self, blob_type: str, blob_id: str) -> bool:
        """True when this caller is to store the blob: neither in the index nor being stored."""
        if self._failure is not None:
            raise self._failure
        handle = (blob_type, blob_id)
        with self._lock:
            if self.repo.index.has(blob_type, blob_id) or handle in self._in_flight:
                return False
            self._in_flight.add(handle)
            return True

    def _place(self, blob_type: str, blob_id: str, length: int, uncompressed_length: int,
               plain_length: int, incompressible: bool, write: Callable[[memoryview], object]) -> None:
        """Reserve ``length`` bytes in the open pack and let ``write`` fill them, outside the lock:
        packs fill in parallel. A failed write marks the pack broken (never uploaded)."""
        builder, offset, length = self._reserve(blob_type, blob_id, length, uncompressed_length, plain_length)
        if blob_type == DATA and incompressible:  # for the anomaly detector
            with self._lock:
                self.incompressible_bytes += plain_length
        try:
            with builder.view(offset, length) as place:
                write(place)
        except BaseException as err:
            builder.broken = True
            self._failure = self._failure or err
            raise
        finally:
            self._release(builder)

    def _reserve(self, blob_type: str, blob_id: str, length: int, uncompressed_length: int,
                 plain_length: int) -> tuple[PackBuilder, int, int]:
        """A place in the open pack of this type; a full pack is closed for its last writer."""
        full = None
        with self._lock:
            builder = self._open[blob_type]
            if not builder.fits(length) and builder.blobs:
                full, builder = builder, PackBuilder(blob_type, max(PACK_CAPACITY, length + HEADER_ROOM))
                self._open[blob_type] = builder
            offset = builder.reserve(blob_id, length, uncompressed_length)
            builder.writers += 1
            self.new_bytes += plain_length
            self.stored_bytes += length
            if builder.full:
                self._open[blob_type] = PackBuilder(blob_type)
                builder.closed = True
            if full is not None:
                full.closed = True
                full = full if full.writers == 0 else None
        if full is not None:
            self._submit(full)
        return builder, offset, length

    def _release(self, builder: PackBuilder) -> None:
        """One writer of ``builder`` is done; the last writer of a closed pack uploads it."""
        with self._lock:
            builder.writers -= 1
            ready = builder.closed and builder.writers == 0
        if ready:
            self._submit(builder)

    def _submit(self, builder: PackBuilder) -> None:
        self._slots.acquire()
        future = self._pool.submit(self._upload, builder)
        with self._lock:
            self._uploads.append(future)

    def _upload(self, builder: PackBuilder) -> None:
        try:
            if builder.broken:  # a blob was never sealed into it; its blobs are saved again next run
                with self._lock:
                    self._in_flight.difference_update((b.type, b.id) for b in builder.blobs)
                return
            pack_id, data = builder.finish(self.repo.key)
            self.repo.store.put(object_name(FileType.PACK, pack_id), data)
            self.repo.index.add_pack(pack_id, builder.blobs)
            with self._lock:
                self.written[pack_id] = builder.blobs
                self._in_flight.difference_update((b.type, b.id) for b in builder.blobs)
        except BaseException as err:
            self._failure = self._failure or err
            raise
        finally:
            self._slots.release()

    def flush(self) -> dict[str, list[PackedBlob]]:
        """Upload the partly filled packs and wait for every upload; returns all packs written.

        Raises the first upload error. Packs already uploaded stay in ``written``
        so the caller can still index them.
        """
        with self._lock:
            partial = [b for b in self._open.values() if b.blobs]
            self._open = {DATA: PackBuilder(DATA), TREE: PackBuilder(TREE)}
            for builder in partial:
                builder.closed = True
            partial = [b for b in partial if b.writers == 0]  # else their last writer submits
        for builder in partial:
            self._submit(builder)
        with self._lock:
            uploads, self._uploads = self._uploads, []
        for future in uploads:
            future.result()
        return dict(self.written)

    def close(self) -> None:
        """Stop the upload threads and give the pack buffers' memory back; no save after this."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._open.clear()
        trim_buffers()
