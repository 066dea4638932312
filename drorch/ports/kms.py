"""The KMS port: a cloud key that wraps and unwraps a repository's data key.

Adapters: ``providers/aws_kms.py``, ``gcp_kms.py``, ``azure_kms.py`` (registry
names ``kms:aws``, ``kms:gcp``, ``kms:azure``). The plaintext data key never
leaves the process; only the wrapped form is stored beside the repository.
"""

from __future__ import annotations

from typing import Protocol


class Kms(Protocol):
    """A cloud KMS key that wraps data keys."""

    key_id: str

    def generate_data_key(self) -> tuple[bytes, bytes]:
        """(plaintext, wrapped) for a new 256-bit data key."""
        ...

    def decrypt(self, wrapped: bytes) -> bytes: ...
