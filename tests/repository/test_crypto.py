from __future__ import annotations

import pytest

from drorch.repository.crypto import OVERHEAD, AuthenticationFailed, Key
from drorch.repository.keys import new_key_file, open_key_file


def test_seal_open_round_trip_and_overhead() -> None:
    key = Key.random()
    sealed = key.seal(b"payload" * 1000)
    assert len(sealed) == 7000 + OVERHEAD
    assert key.open(sealed) == b"payload" * 1000


def test_every_byte_is_authenticated() -> None:
    key = Key.random()
    sealed = bytearray(key.seal(b"secret data"))
    for position in (0, 16, len(sealed) - 1):
        damaged = bytearray(sealed)
        damaged[position] ^= 1
        with pytest.raises(AuthenticationFailed):
            key.open(bytes(damaged))


def test_wrong_key_is_refused() -> None:
    with pytest.raises(AuthenticationFailed):
        Key.random().open(Key.random().seal(b"x"))


def test_key_file_opens_with_its_password_only() -> None:
    master = Key.random()
    _, raw = new_key_file(master, b"correct horse")
    assert open_key_file(raw, b"correct horse") == master
    with pytest.raises(AuthenticationFailed):
        open_key_file(raw, b"wrong")
