"""Plain configuration values that adapters receive instead of the policy model.

The policy layer parses each target URL once (``policy.Target.store_config``)
into a ``StoreConfig``; adapters read its fields and never parse URLs or see
pydantic models, so a change to the policy schema never touches an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoreConfig:
    """One target's storage, as written in the policy and parsed once.

    ``url`` is ``SCHEME://HOST/PATH``: for ``file`` HOST is empty and PATH the
    absolute directory; for ``s3``/``gs``/``az`` HOST is the bucket or
    container and PATH the key prefix; for ``libcloud`` HOST is the driver and
    PATH ``container[/prefix]``. It never carries credentials (the policy
    refuses them), so it is safe in messages.
    """

    name: str
    url: str
    region: str | None = None
    endpoint: str | None = None
    immutable_days: int | None = None  # None: no object lock
    object_lock_mode: str = "COMPLIANCE"

    @property
    def scheme(self) -> str:
        return self.url.partition("://")[0]

    @property
    def host(self) -> str:
        """Bucket, container or libcloud driver; empty for ``file``."""
        return self._rest.partition("/")[0] if self.scheme != "file" else ""

    @property
    def path(self) -> str:
        """The key prefix inside the bucket (``container/prefix`` for libcloud)."""
        return self._rest.partition("/")[2] if self.scheme != "file" else self._rest

    @property
    def local_path(self) -> Path:
        """The directory of a ``file://`` target."""
        return Path(self._rest)

    @property
    def _rest(self) -> str:
        return self.url.partition("://")[2]
