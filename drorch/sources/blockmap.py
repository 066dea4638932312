"""Block maps: the SHA-256 of every 512 KiB block of an image as it was in a snapshot.

A block map lets the next run of an image mirror reuse the parent's chunks for
blocks whose hash did not change, instead of cutting the whole image again. It
is a local cache, not part of the repository: it lives under
``$DRORCH_HOME/blockmaps/<repository id>/<source path key>/`` and is named by
the digest of the node content it describes (the blob ID list, which fixes every
byte), so it can never be applied to other bytes. Losing it costs one slower
run, never data. Writes are atomic (temporary file, then rename); the newest
few per source are kept (the parent of the next run is one of them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from drorch.state.cachefiles import keep_newest, read_cache_file, source_cache_dir, write_cache_file

KEEP = 3  # block maps kept per source: the latest snapshot and a couple of older ones
_MAGIC = b"drorch-blockmap-1\n"


def content_digest(content: list[str], size: int) -> str:
    """Names the exact bytes of an image: its size and blob ID list."""
    digest = hashlib.sha256(f"{size}\n".encode())
    for blob_id in content:
        digest.update(blob_id.encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class BlockMap:
    digest: str  # content_digest of the node it describes
    size: int
    block_size: int
    hashes: bytes  # 32 bytes per block; all zeros for a zero block


class BlockMapStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        return self.root / f"{digest}.map"

    def load(self, digest: str) -> BlockMap | None:
        found = read_cache_file(self._path(digest), _MAGIC)
        if found is None:
            return None
        header, hashes = found
        try:
            blocks = (header["size"] + header["block_size"] - 1) // header["block_size"]
        except (KeyError, TypeError, ZeroDivisionError):
            return None
        if header.get("digest") != digest or len(hashes) != 32 * blocks:
            return None  # torn or foreign: ignore it, the run is only slower
        return BlockMap(digest, header["size"], header["block_size"], hashes)

    def save(self, blockmap: BlockMap) -> None:
        """Best effort: a block map that cannot be written only makes the next run slower."""
        header = {"digest": blockmap.digest, "size": blockmap.size, "block_size": blockmap.block_size}
        if write_cache_file(self._path(blockmap.digest), _MAGIC, header, blockmap.hashes):
            self._trim()

    def _trim(self) -> None:
        keep_newest(self.root, "*.map", KEEP)


def blockmap_store(repository_id: str, source: Path) -> BlockMapStore:
    return BlockMapStore(source_cache_dir("blockmaps", repository_id, source))
