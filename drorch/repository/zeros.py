"""Zero blobs: how runs of zero bytes (holes, unwritten disk) are stored in a repository.

A run of zeros is stored as references to a few zero blobs whose sizes are
powers of two up to ``ZERO_BLOB_MAX``; their IDs are known without reading, so
the archiver never reads or uploads zeros twice and restore can skip writing
them (new files keep their holes). Restic sees ordinary data blobs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import lru_cache

ZERO_BLOB_MAX = 8 * 1024 * 1024
ZEROS = bytes(ZERO_BLOB_MAX)


@lru_cache(maxsize=64)
def zero_blob_id(size: int) -> str:
    return hashlib.sha256(memoryview(ZEROS)[:size]).hexdigest()


def zero_pieces(length: int) -> Iterator[int]:
    """Sizes of the zero blobs that make up ``length`` zero bytes: powers of two, largest first."""
    while length:
        size = min(ZERO_BLOB_MAX, 1 << (length.bit_length() - 1))
        yield size
        length -= size


def is_zero_blob(blob_id: str, length: int) -> bool:
    """Whether ``blob_id`` is the zero blob of ``length`` bytes (cheap: a cached hash)."""
    return length <= ZERO_BLOB_MAX and length & (length - 1) == 0 and blob_id == zero_blob_id(length)


def is_all_zero(data: bytes | bytearray | memoryview) -> bool:
    n = len(data)
    view = memoryview(data)
    for start in range(0, n, ZERO_BLOB_MAX):
        part = view[start:start + ZERO_BLOB_MAX]
        if part != memoryview(ZEROS)[:len(part)]:
            return False
    return True
