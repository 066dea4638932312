"""restic's authenticated encryption: AES-256-CTR then Poly1305-AES over the ciphertext.

Every encrypted unit is ``IV(16) || CIPHERTEXT || MAC(16)``. The IV is random
per unit and doubles as the Poly1305-AES nonce: the one-time Poly1305 key is
``r || AES-128_k(nonce)``, where ``k`` and ``r`` are the two halves of the MAC key.
The MAC is checked before anything is decrypted, so tampered data is never
returned. cryptography's primitives run in OpenSSL and release the GIL for
large buffers, which lets worker threads encrypt packs in parallel.
"""

from __future__ import annotations

import base64
import hmac
import os
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305

IV_SIZE = 16
MAC_SIZE = 16
OVERHEAD = IV_SIZE + MAC_SIZE
# update_into wants room for one more block than it writes; CTR never uses it.
_CTR_SLACK = 15
assert MAC_SIZE >= _CTR_SLACK  # so seal's output buffer doubles as that room
_local = threading.local()


class AuthenticationFailed(Exception):
    """The MAC did not match: wrong key or damaged data."""


@dataclass(frozen=True)
class Key:
    """A restic master key (or a key derived from a password by scrypt)."""

    encrypt: bytes  # 32 bytes, AES-256-CTR
    mac_k: bytes  # 16 bytes, AES-128 key that encrypts the Poly1305 nonce
    mac_r: bytes  # 16 bytes, Poly1305 r (clamped by the primitive)

    @classmethod
    def random(cls) -> Key:
        return cls(encrypt=os.urandom(32), mac_k=os.urandom(16), mac_r=os.urandom(16))

    @classmethod
    def from_kdf_output(cls, derived: bytes) -> Key:
        """Split 64 scrypt bytes the way restic does: encryption key, then k, then r."""
        return cls(encrypt=derived[:32], mac_k=derived[32:48], mac_r=derived[48:64])

    @classmethod
    def from_json(cls, doc: dict) -> Key:
        return cls(
            encrypt=base64.b64decode(doc["encrypt"]),
            mac_k=base64.b64decode(doc["mac"]["k"]),
            mac_r=base64.b64decode(doc["mac"]["r"]),
        )

    def to_json(self) -> dict:
        b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
        return {"mac": {"k": b64(self.mac_k), "r": b64(self.mac_r)}, "encrypt": b64(self.encrypt)}

    @cached_property
    def _aes(self) -> algorithms.AES:
        return algorithms.AES(self.encrypt)

    @cached_property
    def _aes_mac(self) -> algorithms.AES:
        return algorithms.AES(self.mac_k)

    def _mac(self, nonce: bytes, ciphertext: bytes | memoryview) -> bytes:
        return Poly1305.generate_tag(self.mac_r + self._nonce_encryptor().update(nonce), ciphertext)

    def _nonce_encryptor(self) -> Any:
        """This thread's AES-128-ECB encryptor of Poly1305 nonces (stateless, so reusable):
        creating a Cipher costs more than sealing a small blob."""
        cache: dict[int, Any] = _local.__dict__.setdefault("ecb", {})
        enc = cache.get(id(self))
        if enc is None or enc[0] is not self:
            enc = cache[id(self)] = (self, Cipher(self._aes_mac, modes.ECB()).encryptor())
        return enc[1]

    def seal(self, plaintext: bytes | bytearray | memoryview) -> bytearray:
        """Encrypt and authenticate; returns IV || ciphertext || MAC."""
        out = bytearray(len(plaintext) + OVERHEAD)  # exact: resizing would copy the blob
        with memoryview(out) as view:
            self.seal_into(plaintext, view)
        return out

    def seal_into(self, plaintext: bytes | bytearray | memoryview, out: memoryview) -> None:
        """Write IV || ciphertext || MAC into ``out``, exactly ``len(plaintext) + OVERHEAD`` bytes.

        Sealing in place (into a pack being built, say) saves copying every blob:
        fresh multi-megabyte allocations and copies cost more than AES and Poly1305.
        """
        size = len(plaintext)
        if len(out) != size + OVERHEAD:
            raise ValueError(f"seal_into needs {size + OVERHEAD} bytes, got {len(out)}")
        iv = os.urandom(IV_SIZE)
        out[:IV_SIZE] = iv
        enc = Cipher(self._aes, modes.CTR(iv)).encryptor()
        enc.update_into(plaintext, out[IV_SIZE:])  # room for the MAC doubles as CTR's slack
        out[IV_SIZE + size :] = self._mac(iv, out[IV_SIZE : IV_SIZE + size])

    def open(self, sealed: bytes | bytearray | memoryview) -> bytearray:
        """Check the MAC, then decrypt; raises AuthenticationFailed on any mismatch."""
        with memoryview(sealed) as view:
            if len(view) < OVERHEAD:
                raise AuthenticationFailed("ciphertext shorter than IV and MAC")
            iv, ciphertext, tag = bytes(view[:IV_SIZE]), view[IV_SIZE:-MAC_SIZE], view[-MAC_SIZE:]
            if not hmac.compare_digest(self._mac(iv, ciphertext), tag):
                raise AuthenticationFailed("MAC mismatch")
            size = len(ciphertext)
            out = bytearray(size + _CTR_SLACK)
            dec = Cipher(self._aes, modes.CTR(iv)).decryptor()
            dec.update_into(ciphertext, out)
        del out[size:]
        return out
