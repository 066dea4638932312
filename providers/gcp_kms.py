"""``kms:gcp:projects/P/locations/L/keyRings/R/cryptoKeys/K``: Cloud KMS wraps each
repository's data key (envelope encryption).

Credentials come from Google's standard chain (application default credentials,
workload identity). The data key is 32 random bytes made here; Cloud KMS only
encrypts and decrypts it, so the key never leaves this process unwrapped.
"""

from __future__ import annotations

import os
from typing import Any

from google.api_core import exceptions as gexc

from drorch.ports.errors import SecretError

_HINTS = {
    "NotFound": "check the key name in encryption.key (projects/.../cryptoKeys/NAME)",
    "PermissionDenied": "grant roles/cloudkms.cryptoKeyEncrypterDecrypter on the key to this identity",
    "FailedPrecondition": "enable the key's primary version, or restore it if it is scheduled for "
                          "destruction",
    "InvalidArgument": "the envelope was made with another key; point encryption.key at it",
}


class GcpKms:
    def __init__(self, key_id: str, client: Any | None = None) -> None:
        self.key_id = key_id
        if client is None:
            from google.cloud import kms

            client = kms.KeyManagementServiceClient()
        self._client = client

    def _fail(self, action: str, err: Exception) -> SecretError:
        code = type(err).__name__
        return SecretError(f"KMS key {self.key_id} cannot {action}: {code}",
                           hint=_HINTS.get(code, "check the key and the credentials"))

    def generate_data_key(self) -> tuple[bytes, bytes]:
        plaintext = os.urandom(32)
        try:
            reply = self._client.encrypt(name=self.key_id, plaintext=plaintext)
        except gexc.GoogleAPIError as err:
            raise self._fail("generate a data key", err) from err
        return plaintext, bytes(reply.ciphertext)

    def decrypt(self, wrapped: bytes) -> bytes:
        try:
            return bytes(self._client.decrypt(name=self.key_id, ciphertext=wrapped).plaintext)
        except gexc.GoogleAPIError as err:
            raise self._fail("decrypt the repository key", err) from err
