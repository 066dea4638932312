"""The index: which pack holds each blob, merged from every ``index/`` file.

Index files may overlap (a blob in several packs is harmless); an index file
lists the storage IDs it ``supersedes`` so prune can replace them atomically:
write the new file first, then delete the old ones.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from drorch.repository.pack import DATA, TREE, PackedBlob

# restic keeps index files below ~8 MiB; this many blobs stays well under that.
BLOBS_PER_INDEX_FILE = 50_000


class Index:
    """Blob locations by (type, plaintext id). Safe to read and add from several threads."""

    def __init__(self) -> None:
        self._blobs: dict[str, dict[str, tuple[str, PackedBlob]]] = {DATA: {}, TREE: {}}
        self._packs: dict[str, list[PackedBlob]] = {}
        self._lock = threading.Lock()
        self.files: set[str] = set()

    def add_pack(self, pack_id: str, blobs: Iterable[PackedBlob]) -> None:
        """Record a pack's blobs; a blob already known elsewhere keeps its first location."""
        blobs = list(blobs)
        with self._lock:
            listed = self._packs.get(pack_id)
            if listed is None:  # the usual case: loading the index lists each pack once
                self._packs[pack_id] = blobs
            else:
                known = {(b.type, b.id) for b in listed}
                listed.extend(b for b in blobs if (b.type, b.id) not in known)
            by_type = self._blobs
            for blob in blobs:
                by_type[blob.type].setdefault(blob.id, (pack_id, blob))

    def has(self, blob_type: str, blob_id: str) -> bool:
        return blob_id in self._blobs[blob_type]

    def lookup(self, blob_type: str, blob_id: str) -> tuple[str, PackedBlob] | None:
        return self._blobs[blob_type].get(blob_id)

    def packs(self) -> dict[str, list[PackedBlob]]:
        """Every pack the index knows, with every blob it holds (duplicates included)."""
        with self._lock:
            return {pack_id: list(blobs) for pack_id, blobs in self._packs.items()}

    def in_packs_of(self, blob_type: str, at_least: int) -> int:
        """How many ``blob_type`` blobs sit in packs of at least ``at_least`` blobs (counted
        in place: ``packs`` would copy every pack's list)."""
        with self._lock:
            return sum(len(blobs) for blobs in self._packs.values()
                       if blobs and len(blobs) >= at_least and blobs[0].type == blob_type)

    def blob_count(self) -> int:
        return sum(len(by_id) for by_id in self._blobs.values())

    def merge_document(self, file_id: str, doc: dict) -> list[str]:
        """Add one decoded index file; returns the index files it supersedes."""
        for pack in doc.get("packs") or []:
            self.add_pack(pack["id"], [PackedBlob(b["type"], b["id"], b["offset"], b["length"],
                                                  b.get("uncompressed_length", 0))
                                       for b in pack.get("blobs") or []])
        self.files.add(file_id)
        return list(doc.get("supersedes") or [])


def _blob_to_json(blob: PackedBlob) -> dict:
    doc = {"id": blob.id, "type": blob.type, "offset": blob.offset, "length": blob.length}
    if blob.uncompressed_length:
        doc["uncompressed_length"] = blob.uncompressed_length
    return doc


def index_documents(
    packs: dict[str, list[PackedBlob]], supersedes: Iterable[str] = ()
) -> Iterator[dict]:
    """Index file documents for ``packs``, split to keep each file small.

    ``supersedes`` goes into the first document only; restic accepts that.
    """
    batch: list[dict] = []
    count = 0
    superseded = sorted(supersedes)
    for pack_id in sorted(packs):
        blobs = sorted(packs[pack_id], key=lambda b: b.offset)
        batch.append({"id": pack_id, "blobs": [_blob_to_json(b) for b in blobs]})
        count += len(blobs)
        if count >= BLOBS_PER_INDEX_FILE:
            yield {"supersedes": superseded, "packs": batch}
            superseded, batch, count = [], [], 0
    if batch or superseded:
        yield {"supersedes": superseded, "packs": batch}
