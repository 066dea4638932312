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
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class PackedBlob:
    """Where one blob sits in a pack. ``uncompressed_length`` is 0 for uncompressed blobs."""

    type: str
    id: str
    offset: int
    length: int
    uncompressed_length: int

    @property
    def plain_length(self) -> int:
        """Length of the plaintext (uncompressed) blob."""
        return self.uncompressed_length or self.length - OVERHEAD


class PackBuilder:
    """Collects sealed blobs of one type in memory until the pack is big enough to upload."""

    def __init__(self, blob_type: str) -> None:
        self.type = blob_type
        self.buffer = bytearray()
        self.blobs: list[PackedBlob] = []

    def add(self, blob_id: str, sealed: bytes | bytearray, uncompressed_length: int) -> None:
        self.blobs.append(
            PackedBlob(self.type, blob_id, len(self.buffer), len(sealed), uncompressed_length)
        )
        self.buffer += sealed

    @property
    def full(self) -> bool:
        return len(self.buffer) >= TARGET_PACK_SIZE

    def finish(self, key: Key) -> tuple[str, bytearray]:
        """Append the sealed header and its length; returns (pack id, pack bytes)."""
        header = key.seal(encode_header(self.blobs))
        self.buffer += header
        self.buffer += struct.pack("<I", len(header))
        return hashlib.sha256(self.buffer).hexdigest(), self.buffer


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
