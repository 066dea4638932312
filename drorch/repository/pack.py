"""Pack files: sealed blobs back to back, then a sealed header listing them, then its length.

    Blob1 || ... || BlobN || Seal(Header) || uint32le(len(Seal(Header)))

Header entries are ``type(1) || length(4) || [uncompressed length(4)] || id(32)``;
types 0/1 are plain data/tree blobs, 2/3 their zstd-compressed forms. A pack holds
blobs of one type only (required by repository format 2). The pack's storage ID
is the SHA-256 of its bytes.
"""

from __future__ import annotations

import hashlib
import struct
from typing import NamedTuple

from drorch.repository.buffers import BufferPool, anonymous
from drorch.repository.crypto import OVERHEAD, Key

DATA = "data"
TREE = "tree"
_TYPE_CODES = {(DATA, False): 0, (TREE, False): 1, (DATA, True): 2, (TREE, True): 3}
_CODE_TYPES = {code: kind for kind, code in _TYPE_CODES.items()}
_PLAIN_ENTRY = 1 + 4 + 32
_COMPRESSED_ENTRY = 1 + 4 + 4 + 32
# Packs are cut at this size; restic >= 0.16 uses the same default.
TARGET_PACK_SIZE = 16 * 1024 * 1024
# How much of a pack's tail to fetch when reading a header; covers ~400 entries.
EAGER_TAIL = 16 * 1024


class PackFormatError(Exception):
    """A pack's header is missing, truncated or does not authenticate."""


class PackedBlob(NamedTuple):
    """Where one blob sits in a pack. ``uncompressed_length`` is 0 for uncompressed blobs.

    A NamedTuple, immutable and hashable like a frozen dataclass but made in half the
    time: loading the index makes one per blob (23,000 for the bench's 888 MiB set).
    """

    type: str
    id: str
    offset: int
    length: int
    uncompressed_length: int

    @property
    def plain_length(self) -> int:
        """Length of the plaintext (uncompressed) blob."""
        return self.uncompressed_length or self.length - OVERHEAD


# A pack's buffer is allocated once: blobs are sealed straight into it from many threads,
# so it never moves. A blob that would take a pack past its target (and its header's
# room) starts the next pack instead, so a buffer never holds more than TARGET_PACK_SIZE
# plus that room. It used to take one more blob, up to a largest chunk (8 MiB) past the
# target: buffers are reused, their pages stay resident, and four of them in use held up
# to 32 MiB more of a first backup's peak.
HEADER_ROOM = 1024 * 1024  # the header of ~25,000 blobs; a pack of more grows (``_grow``)
PACK_CAPACITY = TARGET_PACK_SIZE + HEADER_ROOM
_PACKS = BufferPool(PACK_CAPACITY, keep=6)  # open data and tree packs, 4 uploading


def trim_buffers() -> None:
    """Return the memory of idle pack buffers to the kernel (see BufferPool.trim)."""
    _PACKS.trim()


class PackBuilder:
    """Collects sealed blobs of one type in memory until the pack is big enough to upload.

    ``add`` copies a sealed blob in; ``reserve`` hands out the place for one to be sealed
    into (``view``) by the caller, outside any lock. ``writers`` counts reserved places
    not yet written: the pack may only be finished once it is back to zero.
    """

    def __init__(self, blob_type: str, capacity: int = PACK_CAPACITY) -> None:
        self.type = blob_type
        # Pooled anonymous memory (drorch.repository.buffers): bytearray(n) would memset
        # 24 MiB holding the GIL, and fresh pages fault on first write.
        self.buffer = _PACKS.get() if capacity == PACK_CAPACITY else memoryview(anonymous(capacity))
        self.used = 0
        self.blobs: list[PackedBlob] = []
        self.writers = 0
        self.closed = False  # no more reservations; the last writer hands it on
        self.broken = False  # a reserved place was never written: never upload this pack

    def fits(self, length: int) -> bool:
        """Whether a blob of ``length`` bytes belongs in this pack: it fits before the target
        (the buffer's room for the header aside)."""
        return self.used + length <= len(self.buffer) - HEADER_ROOM

    def reserve(self, blob_id: str, length: int, uncompressed_length: int) -> int:
        """Claim ``length`` bytes for a sealed blob; returns their offset. Grows the buffer only
        when nobody is writing into it (callers start a new pack instead, see ``fits``)."""
        offset = self.used
        if self.used + length > len(self.buffer):
            if self.writers:
                raise BufferError("pack buffer full while blobs are being sealed into it")
            self._grow(offset + length)
        self.blobs.append(PackedBlob(self.type, blob_id, offset, length, uncompressed_length))
        self.used += length
        return offset

    def view(self, offset: int, length: int) -> memoryview:
        return self.buffer[offset : offset + length]

    def _grow(self, size: int) -> None:
        """Move to a larger buffer (rare: a blob bigger than the room left, added with ``add``)."""
        bigger = memoryview(anonymous(size))
        bigger[: self.used] = self.buffer[: self.used]
        self.buffer = bigger

    def add(self, blob_id: str, sealed: bytes | bytearray, uncompressed_length: int) -> None:
        offset = self.reserve(blob_id, len(sealed), uncompressed_length)
        self.buffer[offset : offset + len(sealed)] = sealed

    @property
    def full(self) -> bool:
        return self.used >= TARGET_PACK_SIZE

    def finish(self, key: Key) -> tuple[str, memoryview]:
        """Append the sealed header and its length; returns (pack id, pack bytes)."""
        header = key.seal(encode_header(self.blobs))
        end = self.used + len(header) + 4
        if end > len(self.buffer):
            self._grow(end)
        self.buffer[self.used : self.used + len(header)] = header
        struct.pack_into("<I", self.buffer, self.used + len(header), len(header))
        self.used = end
        pack = self.buffer[:end]
        return hashlib.sha256(pack).hexdigest(), pack


def encode_header(blobs: list[PackedBlob]) -> bytes:
    parts = []
    for blob in blobs:
        compressed = blob.uncompressed_length > 0
        parts.append(bytes([_TYPE_CODES[(blob.type, compressed)]]))
        parts.append(struct.pack("<I", blob.length))
        if compressed:
            parts.append(struct.pack("<I", blob.uncompressed_length))
        parts.append(bytes.fromhex(blob.id))
    return b"".join(parts)


def decode_header(plain: bytes | bytearray) -> list[PackedBlob]:
    blobs: list[PackedBlob] = []
    pos = offset = 0
    while pos < len(plain):
        code = plain[pos]
        if code not in _CODE_TYPES:
            raise PackFormatError(f"unknown blob type {code} in pack header")
        blob_type, compressed = _CODE_TYPES[code]
        entry = _COMPRESSED_ENTRY if compressed else _PLAIN_ENTRY
        if pos + entry > len(plain):
            raise PackFormatError("pack header ends inside an entry")
        (length,) = struct.unpack_from("<I", plain, pos + 1)
        uncompressed = struct.unpack_from("<I", plain, pos + 5)[0] if compressed else 0
        blob_id = plain[pos + entry - 32 : pos + entry].hex()
        blobs.append(PackedBlob(blob_type, blob_id, offset, length, uncompressed))
        offset += length
        pos += entry
    return blobs


def header_size(blobs: list[PackedBlob]) -> int:
    """Bytes the sealed header and its length field take at the end of a pack."""
    entries = sum(_COMPRESSED_ENTRY if b.uncompressed_length else _PLAIN_ENTRY for b in blobs)
    return entries + OVERHEAD + 4


def pack_size(blobs: list[PackedBlob]) -> int:
    """The size a pack holding exactly these blobs must have."""
    return sum(b.length for b in blobs) + header_size(blobs)


def parse_tail(key: Key, tail: bytes, total_size: int) -> list[PackedBlob] | int:
    """Blobs from the last bytes of a pack, or the tail length needed if ``tail`` is too short."""
    if len(tail) < 4:
        raise PackFormatError("pack is shorter than its header length field")
    (sealed_len,) = struct.unpack("<I", tail[-4:])
    if sealed_len + 4 > total_size or sealed_len < OVERHEAD:
        raise PackFormatError(f"pack header length {sealed_len} does not fit a {total_size}-byte pack")
    if sealed_len + 4 > len(tail):
        return sealed_len + 4
    try:
        plain = key.open(tail[-4 - sealed_len : -4])
    except Exception as err:
        raise PackFormatError("pack header does not authenticate") from err
    blobs = decode_header(plain)
    if sum(b.length for b in blobs) + sealed_len + 4 != total_size:
        raise PackFormatError("pack size does not match the blobs its header lists")
    return blobs
