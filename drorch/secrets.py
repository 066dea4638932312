"""Where the repository password comes from: ``encryption.key`` in the policy.

``env:NAME`` and ``file:PATH`` give the password directly. ``kms:CLOUD:ID`` is
envelope encryption: each repository gets a random data key from the KMS, its
KMS-encrypted form is stored beside the repository (``drorch-kms-envelope``,
which restic ignores), and only the KMS can turn it back into the password.
The value itself never appears in messages, logs or ``--json`` output: errors
name the reference (``env:DRORCH_KEY``), not what it holds.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from drorch import registry
from drorch.ports.errors import ObjectExists, ObjectNotFound, RepositoryNotFound, SecretError
from drorch.ports.kms import Kms
from drorch.ports.store import ObjectStore

if TYPE_CHECKING:  # the policy's models import pydantic: a command reads its key reference first
    from drorch.policy import Encryption

ENVELOPE = "drorch-kms-envelope"


class KeySource(Protocol):
    def password(self, store: ObjectStore, *, create: bool = False) -> bytes:
        """The password of the repository in ``store``; ``create`` prepares a new one."""
        ...


class StaticPassword:
    def __init__(self, value: bytes) -> None:
        self._value = value

    def password(self, store: ObjectStore, *, create: bool = False) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "StaticPassword(<hidden>)"


class KmsEnvelope:
    def __init__(self, kms: Kms) -> None:
        self.kms = kms

    def password(self, store: ObjectStore, *, create: bool = False) -> bytes:
        try:
            doc = json.loads(store.get(ENVELOPE))
        except ObjectNotFound:
            if create:
                return self._create(store)
            if not store.exists("config"):
                raise RepositoryNotFound(f"{store.location} holds no repository",
                                         hint="run `drorch apply` to create it, or check the target URL"
                                         ) from None
            raise SecretError(f"{store.location} has no KMS envelope for its key",
                              hint="it was created with a password: use env: or file: for it") from None
        return self._unwrap(base64.b64decode(doc["wrapped"]))

    def _create(self, store: ObjectStore) -> bytes:
        plaintext, wrapped = self.kms.generate_data_key()
        doc = {"kms": self.kms.key_id, "wrapped": base64.b64encode(wrapped).decode()}
        try:
            store.put(ENVELOPE, json.dumps(doc).encode(), exclusive=True)
        except ObjectExists:
            return self.password(store)  # another process won the race; use its key
        return plaintext.hex().encode()

    def _unwrap(self, wrapped: bytes) -> bytes:
        return self.kms.decrypt(wrapped).hex().encode()


def key_source(encryption: Encryption) -> KeySource:
    """Resolve ``encryption.key`` now, so a missing variable or file fails before any work."""
    static = static_password(encryption.key)
    if static is not None:
        return static
    cloud = encryption.scheme.removeprefix("kms:")
    if not registry.has("kms", cloud):
        raise SecretError(f"encryption key scheme {encryption.scheme}: is not available in this build",
                          hint="use env:NAME, file:PATH or kms:aws|gcp|azure:KEY")
    return KmsEnvelope(registry.load("kms", cloud)(encryption.reference))


def static_password(key: str) -> StaticPassword | None:
    """The password an ``env:NAME`` or ``file:PATH`` key reference gives (a file path as the
    policy resolved it); None for any other reference. SecretError when it gives none."""
    kind, _, ref = key.partition(":")
    if kind == "env":
        value = os.environ.get(ref)
        if not value:
            raise SecretError(f"encryption key env:{ref} is not set",
                              hint=f"export {ref} with the repository password before running")
        return StaticPassword(value.encode())
    if kind == "file":
        return StaticPassword(_read_key_file(ref))
    return None


def _read_key_file(ref: str) -> bytes:
    try:
        value = Path(ref).read_text().rstrip("\r\n")
    except OSError as err:
        raise SecretError(f"encryption key file {ref} cannot be read: {err.strerror or err}",
                          hint="create it (mode 0600) or fix encryption.key") from err
    if not value:
        raise SecretError(f"encryption key file {ref} is empty")
    return value.encode()
