"""``kms:azure:https://VAULT.vault.azure.net/keys/NAME[/VERSION]``: Key Vault wraps each
repository's data key (RSA-OAEP-256 key wrapping: envelope encryption).

Credentials come from ``DefaultAzureCredential`` (environment, managed identity,
workload identity, Azure CLI). The data key is 32 random bytes made here.
"""

from __future__ import annotations

import os
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

from drorch.ports.errors import SecretError

_HINTS = {
    404: "check the key URL in encryption.key",
    403: "grant 'Key Vault Crypto User' (wrapKey, unwrapKey) on the key to this identity",
    401: "check the Azure credentials (DefaultAzureCredential found none that work)",
    400: "the envelope was made with another key, or the key is disabled",
}


class AzureKms:
    def __init__(self, key_id: str, client: Any | None = None) -> None:
        self.key_id = key_id
        if client is None:
            from azure.identity import DefaultAzureCredential
            from azure.keyvault.keys.crypto import CryptographyClient

            client = CryptographyClient(key_id, credential=DefaultAzureCredential())
        self._client = client

    def _fail(self, action: str, err: AzureError) -> SecretError:
        status = 404 if isinstance(err, ResourceNotFoundError) else getattr(err, "status_code", None)
        reason = f"HTTP {status}" if status else type(err).__name__
        return SecretError(f"KMS key {self.key_id} cannot {action}: {reason}",
                           hint=_HINTS.get(status or 0, "check the key and the credentials"))

    def _algorithm(self) -> Any:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        return KeyWrapAlgorithm.rsa_oaep_256

    def generate_data_key(self) -> tuple[bytes, bytes]:
        plaintext = os.urandom(32)
        try:
            wrapped = self._client.wrap_key(self._algorithm(), plaintext).encrypted_key
        except (HttpResponseError, AzureError) as err:
            raise self._fail("generate a data key", err) from err
        return plaintext, bytes(wrapped)

    def decrypt(self, wrapped: bytes) -> bytes:
        try:
            return bytes(self._client.unwrap_key(self._algorithm(), wrapped).key)
        except (HttpResponseError, AzureError) as err:
            raise self._fail("decrypt the repository key", err) from err
