"""Resolving ``encryption.key`` references to the repository password.

The value itself never sits in the policy, and it never appears in messages,
logs or ``--json`` output: errors name the reference (``env:DRORCH_KEY``), not
what it holds.
"""

from __future__ import annotations

import os
from pathlib import Path

from drorch.errors import SecretError
from drorch.policy import Encryption


def resolve_password(encryption: Encryption) -> bytes:
    kind, _, ref = encryption.key.partition(":")
    if kind == "env":
        value = os.environ.get(ref)
        if not value:
            raise SecretError(f"encryption key env:{ref} is not set",
                              hint=f"export {ref} with the repository password before running")
        return value.encode()
    if kind == "file":
        try:
            value = Path(ref).read_text().rstrip("\r\n")
        except OSError as err:
            raise SecretError(f"encryption key file {ref} cannot be read: {err.strerror or err}",
                              hint="create it (mode 0600) or fix encryption.key") from err
        if not value:
            raise SecretError(f"encryption key file {ref} is empty")
        return value.encode()
    raise SecretError(f"encryption key scheme {kind}: is not available in this build",
                      hint="use env:NAME or file:PATH")
