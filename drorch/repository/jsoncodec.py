"""JSON for the repository's hot documents (trees, index files), by orjson.

Trees and index files are decoded on every run: a no-change backup of 20,000
files decodes 2,200 parent trees (8 MB of JSON) and the index, a restore every
tree. The standard library took 86 ms for those trees and orjson 26 ms; encoding
the trees of a first backup took 98 ms and 9 ms (issue 14).

Both read and write plain JSON, so what either wrote the other reads, and restic
reads both. The bytes differ in one way: orjson writes non-ASCII characters as
UTF-8 where the standard library wrote ``\\uXXXX`` escapes. A tree's ID is the hash
of its bytes, so a directory with such a name gets a new tree ID once, the first
time it is written again; unchanged directories keep the parent's tree ID, which
is taken from the parent and never re-encoded (``Archiver._unchanged_tree``).

orjson refuses what JSON cannot say exactly (integers beyond 64 bits, strings
holding lone surrogates from undecodable file names): those documents are
written by the standard library, as before. Malformed input raises
``ValueError`` (orjson's ``JSONDecodeError`` is one), as ``json.loads`` did.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """The decoded document; ``ValueError`` when ``data`` is not JSON (or not UTF-8)."""
    return orjson.loads(data)


def dumps(doc: Any) -> bytes:
    """``doc`` as compact JSON (no spaces), UTF-8."""
    try:
        return orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):  # beyond 64-bit integers, lone surrogates
        return json.dumps(doc, separators=(",", ":")).encode()
