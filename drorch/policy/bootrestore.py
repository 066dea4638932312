"""``restore:`` on a recovery: the VM restores a directory mirror itself when it boots.

    recovery:
      - name: web-vm
        provider: aws
        from: web                       # a directory mirror
        instance: {type: t3.small, image: web-base, subnet: dr-subnet-a, region: eu-west-1}
        restore:
          path: /srv/www                # where the VM puts the data
          key: ssm:/drorch/aws-dr/key   # the repository password, read by the VM at boot
          target: s3-dr                 # default: the mirror's first object-store target
        rto: 30m

A disk snapshot cannot carry a directory mirror into a cloud, so ``launch``
boots the VM with user-data that installs drorch, reads the repository
password from the cloud's secret store (``ssm:NAME``, a SecureString
parameter, or ``secretsmanager:NAME``), restores the mirror's newest snapshot
from the object-store target onto ``path`` and reports back; the step waits
for that report. The password is never written into the user-data, which any
process on the VM (and anyone allowed to describe the instance) can read.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from pydantic import field_validator

from drorch.policy.fields import Name, StrictModel
from drorch.policy.validation import reject

__all__ = ["BootRestore"]

_SECRET_STORES = ("ssm:", "secretsmanager:")


class BootRestore(StrictModel):
    """Where the VM restores the mirror, and where it reads the repository password."""

    path: PurePosixPath
    key: str
    target: Name | None = None
    # pip arguments the VM installs drorch with; pin a version for a reproducible recovery.
    install: tuple[str, ...] = ("drorch[aws]",)
    python: str = "python3"

    @field_validator("path", mode="before")
    @classmethod
    def _absolute(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.startswith("/"):
            reject(f"path '{value}' is a path on the VM and must be absolute, e.g. /srv/www")
        return value

    @field_validator("key")
    @classmethod
    def _secret_store(cls, value: str) -> str:
        if not value.startswith(_SECRET_STORES) or value.endswith(":"):
            reject(f"key '{value}' must name a secret the VM can read: ssm:PARAMETER (a SecureString) "
                   "or secretsmanager:SECRET; the password itself never goes into the user-data")
        return value

    @field_validator("install")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            reject('install must list pip arguments, e.g. ["drorch[aws]==0.2.0"]')
        return value
