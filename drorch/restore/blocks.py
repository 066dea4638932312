"""An image snapshot seen as fixed-size blocks, read straight from the repository.

Block-level targets (EBS snapshots and the like) take an image in fixed blocks
(512 KiB for EBS) and inherit unchanged blocks from a parent. ``ImageBlocks``
gives, for a snapshot's image node:

- a **signature** per block: a digest of which blob ranges make it up. Blob IDs
  are SHA-256 of their bytes, so equal signatures mean equal bytes, and
  comparing the signatures of two snapshots finds the changed blocks without
  reading any data; zero blocks have the all-zero signature.
- the **bytes** of a block, assembled from its blobs (fetched and checked once
  each, the last few cached: neighbouring blocks share blobs).

``ExportManifest`` is what a block target keeps about what it holds: per block
the signature and the SHA-256 of the bytes written. It is a local cache under
``$DRORCH_HOME/exports/``; without it an export is full, never wrong.
"""

from __future__ import annotations

import hashlib
import threading
from bisect import bisect_right
from collections import OrderedDict
from pathlib import Path
from typing import Any

from drorch.ports.ebs import ZERO_SIGNATURE, ExportManifest
from drorch.repository.content import content_blobs
from drorch.repository.pack import DATA
from drorch.repository.repository import Repository
from drorch.repository.zeros import is_zero_blob
from drorch.state.cachefiles import read_cache_file, write_cache_file
from drorch.state.tables import home

_BLOB_CACHE = 8
_MAGIC = b"drorch-export-manifest-1\n"


class ImageBlocks:
    def __init__(self, repo: Repository, node: dict[str, Any], block_size: int) -> None:
        self.repo = repo
        self.block_size = block_size
        self.pieces: list[tuple[int, int, str, bool]] = []  # offset, length, blob ID, zero
        for offset, blob_id, _, blob in content_blobs(repo, node, f"image {node.get('name')}"):
            length = blob.plain_length
            self.pieces.append((offset, length, blob_id, is_zero_blob(blob_id, length)))
        self.size = self.pieces[-1][0] + self.pieces[-1][1] if self.pieces else 0
        self._offsets = [p[0] for p in self.pieces]
        self.blocks = (self.size + block_size - 1) // block_size
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def signatures(self) -> list[bytes]:
        """16 bytes per block; ZERO_SIGNATURE for a block made only of zero blobs."""
        out: list[bytes] = []
        index = 0
        for block in range(self.blocks):
            start, end = block * self.block_size, min((block + 1) * self.block_size, self.size)
            while self.pieces[index][0] + self.pieces[index][1] <= start:
                index += 1
            digest = hashlib.sha256()
            all_zero = True
            i = index
            while i < len(self.pieces) and self.pieces[i][0] < end:
                offset, length, blob_id, zero = self.pieces[i]
                all_zero = all_zero and zero
                lo, hi = max(start, offset) - offset, min(end, offset + length) - offset
                digest.update(f"{blob_id}:{lo}:{hi};".encode())
                i += 1
            out.append(ZERO_SIGNATURE if all_zero else digest.digest()[:16])
        return out

    def read(self, block: int) -> bytes:
        """The block's bytes, zero-padded to ``block_size`` past the end of the image."""
        start = block * self.block_size
        end = min(start + self.block_size, self.size)
        out = bytearray(self.block_size)
        first = max(0, bisect_right(self._offsets, start) - 1)
        for offset, length, blob_id, zero in self.pieces[first:]:
            if offset >= end:
                break
            if offset + length <= start or zero:
                continue
            lo, hi = max(start, offset), min(end, offset + length)
            out[lo - start:hi - start] = self._blob(blob_id)[lo - offset:hi - offset]
        return bytes(out)

    def _blob(self, blob_id: str) -> bytes:
        with self._lock:
            cached = self._cache.get(blob_id)
            if cached is not None:
                self._cache.move_to_end(blob_id)
                return cached
        data = bytes(self.repo.load_blob(DATA, blob_id))
        with self._lock:
            self._cache[blob_id] = data
            while len(self._cache) > _BLOB_CACHE:
                self._cache.popitem(last=False)
        return data


class ExportManifests:
    """Manifests of exported snapshots, one file each, under ``root``; written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def load(self, snapshot_id: str) -> ExportManifest | None:
        found = read_cache_file(self.root / f"{snapshot_id}.manifest", _MAGIC)
        if found is None:
            return None
        head, body = found
        try:
            blocks = head["blocks"]
            if len(body) != 48 * blocks:
                return None
            sigs = [body[48 * i:48 * i + 16] for i in range(blocks)]
            sums = [body[48 * i + 16:48 * i + 48] for i in range(blocks)]
            return ExportManifest(snapshot_id, head["source"], head["size"], head["block_size"], sigs, sums)
        except (KeyError, TypeError):
            return None

    def save(self, manifest: ExportManifest) -> None:
        head = {"source": manifest.source, "size": manifest.size, "block_size": manifest.block_size,
                "blocks": len(manifest.signatures)}
        body = b"".join(s + c for s, c in zip(manifest.signatures, manifest.checksums, strict=True))
        write_cache_file(self.root / f"{manifest.snapshot_id}.manifest", _MAGIC, head, body)


def export_manifests(kind: str, scope: str) -> ExportManifests:

    return ExportManifests(home() / "exports" / kind / scope)
