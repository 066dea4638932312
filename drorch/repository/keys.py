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
import threading
from collections import OrderedDict
from concurrent.futures import Future

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from drorch.ports.store import ObjectStore
from drorch.repository.crypto import AuthenticationFailed, Key
from drorch.repository.layout import FileType
from drorch.repository.timefmt import format_ns, now_ns

# restic's defaults: ~100 ms and 32 MiB per attempt, which makes guessing expensive.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
# What a key file may ask for. restic itself accepts anything scrypt allows (up to 2^31),
# so a planted key file could make every command spend hours and gigabytes deriving; a
# key file beyond these is refused and the next key file tried. ``restic key add``
# calibrates to at most 60 MiB and about half a second, far inside these bounds.
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_R = 32
MAX_SCRYPT_P = 16
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024  # 128 * N * r bytes
MAX_SCRYPT_WORK = 2**24  # N * r * p: 64 times restic's default
SALT_SIZE = 64  # restic refuses any other salt length


class KeyFileRefused(ValueError):
    """A key file drorch will not try: malformed, or asking for too costly a derivation."""


_Params = tuple[bytes, bytes, int, int, int]  # password, salt, N, r, p
_derived: OrderedDict[_Params, Future[Key]] = OrderedDict()
_derived_lock = threading.Lock()
_KEEP_DERIVED = 16
# Derivations ahead at once: each holds 32 MiB (128 * N * r) while it runs, and a policy
# may have many targets; two keep two cores busy.
_AHEAD = threading.BoundedSemaphore(2)


def _derive(password: bytes, salt: bytes, n: int, r: int, p: int) -> Key:
    """Cached: plan, apply and verify open the same key file in one process; scrypt is slow
    on purpose (~0.1 s), and paying it once per key file is enough. A derivation already
    under way (``derive_ahead``) is waited for, not started again."""
    return _derivation((password, salt, n, r, p), ahead=False).result()


def derive_ahead(raw: bytes, password: bytes) -> None:
    """Start deriving the key of key file ``raw`` on a thread of its own and return at once.

    scrypt releases the GIL, so a command that starts it as soon as it knows the
    password spends its ~0.1 s importing the engine meanwhile; the open that needs
    the key waits for it. A key file that would be refused is left for that open to
    refuse, with its reason.
    """
    try:
        doc = _key_document(raw)
        salt = _base64_field(doc, "salt")
    except KeyFileRefused:
        return
    _derivation((password, salt, doc["N"], doc["r"], doc["p"]), ahead=True)


def unlock_ahead(store: ObjectStore, password: bytes) -> None:
    """Start deriving the key of the repository's first key file (``derive_ahead``):
    ``Repository.open`` with the same password then waits for it instead of deriving."""
    names = key_file_names(store)
    if names:
        derive_ahead(store.get(names[0]), password)


def key_file_names(store: ObjectStore) -> list[str]:
    """The key files in the order they are tried: by name, as restic does."""
    return sorted(info.name for info in store.list(FileType.KEY.prefix))


def _derivation(params: _Params, *, ahead: bool) -> Future[Key]:
    with _derived_lock:
        future = _derived.get(params)
        if future is not None:
            _derived.move_to_end(params)
            return future
        future = _derived[params] = Future()
        while len(_derived) > _KEEP_DERIVED:
            _derived.popitem(last=False)
    if ahead:
        threading.Thread(target=_run_ahead, args=(params, future), name="scrypt", daemon=True).start()
    else:
        _run_derivation(params, future)
    return future


def _run_ahead(params: _Params, future: Future[Key]) -> None:
    with _AHEAD:
        _run_derivation(params, future)


def _run_derivation(params: _Params, future: Future[Key]) -> None:
    password, salt, n, r, p = params
    try:
        future.set_result(Key.from_kdf_output(Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(password)))
    except BaseException as err:  # noqa: BLE001 - raised by whoever waits; not kept for the next try
        with _derived_lock:
            if _derived.get(params) is future:
                del _derived[params]
        future.set_exception(err)


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
    """The master key inside one key file; AuthenticationFailed if the password is wrong,
    KeyFileRefused (saying why) if the file is malformed or its scrypt parameters are out of bounds."""
    doc = _key_document(raw)
    salt, sealed = _base64_field(doc, "salt"), _base64_field(doc, "data")
    user_key = _derive(password, salt, doc["N"], doc["r"], doc["p"])
    try:
        master = json.loads(user_key.open(sealed))
        return Key.from_json(master)
    except AuthenticationFailed:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise KeyFileRefused(f"its master key is malformed ({type(err).__name__})") from None


def _key_document(raw: bytes) -> dict:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise KeyFileRefused("it is not JSON") from None
    if not isinstance(doc, dict):
        raise KeyFileRefused("it is not a JSON object")
    if doc.get("kdf") != "scrypt":
        raise KeyFileRefused(f"its KDF {str(doc.get('kdf'))[:20]!r} is not scrypt")
    for name in ("N", "r", "p"):
        if type(doc.get(name)) is not int:
            raise KeyFileRefused(f"its scrypt parameter {name} is not a whole number")
    check_scrypt_parameters(doc["N"], doc["r"], doc["p"])
    return doc


def check_scrypt_parameters(n: int, r: int, p: int) -> None:
    """Refuse parameters scrypt cannot take or that would cost more than the bounds above."""
    if n < 2 or n & (n - 1) or r < 1 or p < 1:
        raise KeyFileRefused(f"its scrypt parameters N={n} r={r} p={p} are invalid "
                             "(N must be a power of two, r and p at least 1)")
    if (n > MAX_SCRYPT_N or r > MAX_SCRYPT_R or p > MAX_SCRYPT_P
            or 128 * n * r > MAX_SCRYPT_MEMORY or n * r * p > MAX_SCRYPT_WORK):
        raise KeyFileRefused(
            f"its scrypt parameters N={n} r={r} p={p} exceed drorch's limits (N<=2^20, r<=32, p<=16, "
            f"{MAX_SCRYPT_MEMORY >> 20} MiB, N*r*p<=2^24)")


def _base64_field(doc: dict, name: str) -> bytes:
    value = doc.get(name)
    if not isinstance(value, str):
        raise KeyFileRefused(f"its {name} is not a base64 string")
    try:
        decoded = base64.b64decode(value, validate=True)
    except ValueError:
        raise KeyFileRefused(f"its {name} is not valid base64") from None
    if name == "salt" and len(decoded) != SALT_SIZE:
        raise KeyFileRefused(f"its salt is {len(decoded)} bytes, restic uses {SALT_SIZE}")
    return decoded
