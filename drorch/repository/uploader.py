"""Saving blobs: dedup, compress, encrypt, pack and upload, from many threads at once.

``save`` is called from worker threads; hashing, compression and encryption run
in the caller's thread (hashlib, zstandard and OpenSSL release the GIL), only the
append to the open pack holds a lock. Full packs upload on a small thread pool;
at most ``max_pending_packs`` wait in memory, so a slow store slows the producers
instead of filling RAM. Nothing a pack holds is visible to readers until
``flush`` has returned and the caller has written an index for it.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from drorch.repository.layout import FileType, object_name
from drorch.repository.pack import DATA, TREE, PackBuilder, PackedBlob
from drorch.repository.repository import Repository, compress, worth_compressing


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
        if self._failure is not None:
            raise self._failure
        blob_id = blob_id or hashlib.sha256(data).hexdigest()
        handle = (blob_type, blob_id)
        with self._lock:
            if self.repo.index.has(blob_type, blob_id) or handle in self._in_flight:
                return blob_id
            self._in_flight.add(handle)
        compressed = compress(data) if worth_compressing(data) else data
        if len(compressed) < len(data):
            sealed, uncompressed_length = self.repo.key.seal(compressed), len(data)
        else:
            sealed, uncompressed_length = self.repo.key.seal(data), 0
        full = None
        with self._lock:
            builder = self._open[blob_type]
            builder.add(blob_id, sealed, uncompressed_length)
            self.new_bytes += len(data)
            self.stored_bytes += len(sealed)
            if blob_type == DATA and len(compressed) >= 0.9 * len(data):
                self.incompressible_bytes += len(data)
            if builder.full:
                full = builder
                self._open[blob_type] = PackBuilder(blob_type)
        if full is not None:
            self._submit(full)
        return blob_id

    def _submit(self, builder: PackBuilder) -> None:
        self._slots.acquire()
        future = self._pool.submit(self._upload, builder)
        with self._lock:
            self._uploads.append(future)

    def _upload(self, builder: PackBuilder) -> None:
        try:
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
            self._submit(builder)
        with self._lock:
            uploads, self._uploads = self._uploads, []
        for future in uploads:
            future.result()
        return dict(self.written)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
