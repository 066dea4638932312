"""One helper process of the archiver: reads, hashes, compresses and seals small files.

The archiver sends batches of small files to a few of these processes
(``drorch.helpers.pool``), each with a GIL of its own, and only copies the
sealed blobs they return into its packs; why, with numbers: ``drorch.archiver.smallfiles``.

Run as ``python -m drorch.archiver.helper`` (``drorch.helpers.frames.serve``): each
batch ``[(path, expected size), ...]`` gets a result per file, in order (see
``seal_file``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from drorch.archiver.reading import read_small_file
from drorch.helpers.frames import serve
from drorch.repository.crypto import Key
from drorch.repository.repository import encode_blob

# ("blob", id, sealed, uncompressed length, plain length, incompressible) | ("empty",)
# | ("grew",): longer than listed, the archiver reads it itself | ("error", errno, strerror)
Result = tuple[Any, ...]


def seal_file(key: Key, path: str, expected: int) -> Result:
    """What storing one small file takes, except claiming its place in a pack."""
    try:
        data = read_small_file(path, expected)
    except OSError as err:
        return ("error", err.errno, err.strerror)
    if data is None:
        return ("grew",)
    if not data:
        return ("empty",)
    payload, uncompressed_length, incompressible = encode_blob(data)
    return ("blob", hashlib.sha256(data).hexdigest(), key.seal(payload), uncompressed_length,
            len(data), incompressible)


def seal_batch(key: Key, batch: list[tuple[str, int]]) -> list[Result]:
    return [seal_file(key, path, expected) for path, expected in batch]


if __name__ == "__main__":
    serve(seal_batch)
