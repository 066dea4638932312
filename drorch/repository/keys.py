"""Key files: the repository master key, sealed under a key derived from a password by scrypt.

A repository may hold several key files (one per password); opening tries each.
Key files are stored as plain JSON (restic's format) and named by the SHA-256 of
their bytes; only the ``data`` field is secret, and it is sealed.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import socket
from functools import lru_cache

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from drorch.repository.crypto import AuthenticationFailed, Key
from drorch.repository.timefmt import format_ns, now_ns

# restic's defaults: ~100 ms and 32 MiB per attempt, which makes guessing expensive.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1


@lru_cache(maxsize=16)
def _derive(password: bytes, salt: bytes, n: int, r: int, p: int) -> Key:
    """Cached: plan, apply and verify open the same key file in one process; scrypt is slow
    on purpose (~0.1 s), and paying it once per key file is enough."""
    return Key.from_kdf_output(Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(password))


def new_key_file(master: Key, password: bytes) -> tuple[str, bytes]:
    """A key file sealing ``master`` under ``password``; returns (storage id, bytes)."""
    salt = os.urandom(64)
    user_key = _derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    sealed = user_key.seal(json.dumps(master.to_json()).encode())
    doc = {
        "created": format_ns(now_ns()),
        "username": getpass.getuser(),
        "hostname": socket.gethostname(),
        "kdf": "scrypt",
        "N": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": base64.b64encode(salt).decode(),
        "data": base64.b64encode(sealed).decode(),
    }
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest(), raw


def open_key_file(raw: bytes, password: bytes) -> Key:
    """The master key inside one key file; AuthenticationFailed if the password is wrong."""
    doc = json.loads(raw)
    if doc.get("kdf") != "scrypt":
        raise AuthenticationFailed(f"unsupported KDF {doc.get('kdf')!r}")
    user_key = _derive(password, base64.b64decode(doc["salt"]), doc["N"], doc["r"], doc["p"])
    master = user_key.open(base64.b64decode(doc["data"]))
    return Key.from_json(json.loads(master))
