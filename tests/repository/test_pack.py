from __future__ import annotations

import hashlib

import pytest

from drorch.repository.crypto import Key
from drorch.repository.pack import (
    DATA,
    PackBuilder,
    PackFormatError,
    decode_header,
    encode_header,
    pack_size,
    parse_tail,
)


def _pack(key: Key) -> tuple[str, bytes, PackBuilder]:
    builder = PackBuilder(DATA)
    for index, payload in enumerate((b"a" * 100, b"b" * 5000, b"")):
        sealed = key.seal(payload)
        builder.add(hashlib.sha256(payload).hexdigest(), sealed, 1234 if index == 1 else 0)
    pack_id, data = builder.finish(key)
    return pack_id, bytes(data), builder


def test_header_round_trip_keeps_types_lengths_and_offsets() -> None:
    key = Key.random()
    pack_id, data, builder = _pack(key)
    assert hashlib.sha256(data).hexdigest() == pack_id
    assert len(data) == pack_size(builder.blobs)
    assert parse_tail(key, data, len(data)) == builder.blobs
    assert decode_header(encode_header(builder.blobs)) == builder.blobs


def test_short_tail_asks_for_the_header_length() -> None:
    key = Key.random()
    _, data, _ = _pack(key)
    needed = parse_tail(key, data[-4:], len(data))
    assert isinstance(needed, int) and needed < len(data)
    assert parse_tail(key, data[-needed:], len(data)) == parse_tail(key, data, len(data))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_header_is_refused(damage: str) -> None:
    key = Key.random()
    _, data, _ = _pack(key)
    broken = bytearray(data)
    if damage == "flip":
        broken[-10] ^= 0xFF
    else:
        broken = broken[:-30] + broken[-4:]
    with pytest.raises(PackFormatError):
        parse_tail(key, bytes(broken), len(broken))
