"""The object-store seam: the only way the repository reaches storage.

Adapters live in ``drorch.providers`` (the top-level ``providers/`` folder) and
register by URL scheme; third parties add schemes through the ``drorch.providers``
entry-point group. An adapter stores opaque names and bytes; it never builds
repository paths (see ``repository.layout``) and holds no retry loops.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

from drorch.errors import UsageError

if TYPE_CHECKING:
    from drorch.policy import Target


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int
    modified: float | None = None  # seconds since the epoch, when the store reports it


class ObjectStore(Protocol):
    """Named immutable objects. Names use ``/`` separators and never start with one.

    Contract every adapter keeps (checked by tests/conformance):
    - ``put`` is atomic: a reader sees the whole object or nothing, never a prefix.
      With ``exclusive=True`` it refuses (``ObjectExists``) to replace an existing
      name; this is what makes lock files and ``config`` safe to create.
    - ``get`` raises ``ObjectNotFound`` for a missing name and returns exactly
      ``length`` bytes from ``offset`` (all of the rest when ``length`` is None).
    - ``list`` yields every object whose name starts with ``prefix``, in no order.
    - ``delete`` of a missing name is not an error (deletes are retried).
    """

    @property
    def location(self) -> str:
        """Where the objects live, for messages (never contains credentials)."""
        ...

    def put(self, name: str, data: bytes | bytearray | memoryview, *, exclusive: bool = False
            ) -> None: ...

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes: ...

    def exists(self, name: str) -> bool: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def delete(self, name: str) -> None: ...


class SupportsImmutability(Protocol):
    """Stores that can keep objects undeletable for a number of days (object lock, retention)."""

    def immutability_problem(self, days: int) -> str | None:
        """Why objects written now would *not* be kept for ``days`` (None when they will be)."""
        ...


def immutability_problem(store: ObjectStore, days: int) -> str | None:
    """Check a store can honour ``immutable_days``; stores without the capability cannot."""
    inner = getattr(store, "inner", store)
    check = getattr(inner, "immutability_problem", None)
    if check is None:
        return f"{store.location} cannot keep objects immutable; remove immutable_days or use S3"
    return check(days)  # type: ignore[no-any-return]


StoreFactory = Callable[["Target"], ObjectStore]

_BUILTIN_SCHEMES = {
    "file": "drorch.providers.local:open_store",
    "s3": "drorch.providers.s3:open_store",
    "gs": "drorch.providers.gcs:open_store",
    "az": "drorch.providers.azure:open_store",
    "libcloud": "drorch.providers.libcloud_store:open_store",
}


def _load(ref: str) -> StoreFactory:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def open_store(target: Target) -> ObjectStore:
    """Open the adapter for a target's URL scheme, wrapped in retries; the SDK is imported now."""
    from drorch.retry import RetryingStore

    return RetryingStore(_open_adapter(target))


def _open_adapter(target: Target) -> ObjectStore:
    scheme = target.url.split("://", 1)[0]
    refs = dict(_BUILTIN_SCHEMES)
    refs.update({ep.name: ep.value for ep in entry_points(group="drorch.providers")})
    if scheme not in refs:
        known = ", ".join(sorted(refs))
        raise UsageError(
            f"target {target.name!r}: no storage provider for scheme {scheme!r}",
            hint=f"known schemes: {known}",
        )
    return _load(refs[scheme])(target)
