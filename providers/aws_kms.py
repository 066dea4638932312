"""``kms:aws:ARN``: AWS KMS wraps each repository's data key (envelope encryption).

The region comes from the key ARN; credentials from boto3's standard chain.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from drorch.ports.errors import SecretError

_HINTS = {
    "NotFoundException": "check the key ARN in encryption.key",
    "DisabledException": "enable the key, or restore it if it is pending deletion",
    "KMSInvalidStateException": "enable the key, or cancel its deletion",
    "AccessDeniedException": "grant kms:GenerateDataKey and kms:Decrypt on the key to this identity",
    "InvalidCiphertextException": "the envelope was made with another KMS key; point encryption.key at it",
    "IncorrectKeyException": "the envelope was made with another KMS key; point encryption.key at it",
}


class AwsKms:
    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        parts = key_id.split(":")
        region = parts[3] if key_id.startswith("arn:") and len(parts) > 3 else None
        self._client: Any = boto3.client("kms", region_name=region)

    def _fail(self, action: str, err: Exception) -> SecretError:
        code = err.response.get("Error", {}).get("Code", "") if isinstance(err, ClientError) else ""
        return SecretError(f"KMS key {self.key_id} cannot {action}: {code or err}",
                           hint=_HINTS.get(code, "check the key and the credentials"))

    def generate_data_key(self) -> tuple[bytes, bytes]:
        try:
            reply = self._client.generate_data_key(KeyId=self.key_id, KeySpec="AES_256")
        except (ClientError, BotoCoreError) as err:
            raise self._fail("generate a data key", err) from err
        return reply["Plaintext"], reply["CiphertextBlob"]

    def decrypt(self, wrapped: bytes) -> bytes:
        try:
            reply = self._client.decrypt(CiphertextBlob=wrapped, KeyId=self.key_id)
        except (ClientError, BotoCoreError) as err:
            raise self._fail("decrypt the repository key", err) from err
        return reply["Plaintext"]  # type: ignore[no-any-return]
