"""The object-store port: the only way the repository reaches storage.

Adapters live in ``drorch.providers`` (the top-level ``providers/`` folder) and
are found by URL scheme through ``drorch.registry``; ``drorch.storage`` opens
them and wraps them in retries. An adapter stores opaque names and bytes; it
never builds repository paths (see ``repository.layout``) and holds no retry loops.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


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


class ReadsInto(Protocol):
    """Stores that can read an object's bytes straight into caller memory (a local disk)."""

    def get_into(self, name: str, offset: int, into: memoryview) -> int:
        """Read ``len(into)`` bytes of ``name`` from ``offset`` into ``into``; the count read
        (fewer only where the object ends). ``ObjectNotFound`` as ``get``."""
        ...


def get_into(store: ObjectStore, name: str, offset: int, into: memoryview) -> int:
    """``store.get(name, offset, len(into))`` into ``into``; the count read.

    Restore reads each pack into reused memory this way where the store can
    (``reads_into``): 16 MiB of fresh ``bytes`` per pack kept the allocator's arenas
    tens of MiB above what was in use. Any other store is read with ``get`` and copied.
    """
    reader = getattr(store, "get_into", None)
    if reader is not None:
        return int(reader(name, offset, into))
    data = store.get(name, offset, len(into))
    into[: len(data)] = data
    return len(data)


def reads_into(store: ObjectStore) -> bool:
    """Whether ``get_into`` reads straight into the caller's memory: otherwise it only adds a
    copy of what ``get`` returned, and a caller that can use those bytes should."""
    native = getattr(store, "reads_into", None)  # a wrapper says whether what it wraps does
    return bool(native) if native is not None else hasattr(store, "get_into")


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


# Part of the store contract: objects under these prefixes are rewritten every few
# minutes and deleted when a run ends (lock files), so ``immutable_days`` never
# applies to them: locked versions would pile up undeletable, and a lock that
# cannot be deleted would block every later run until it goes stale.
# ``repository.layout`` checks that its lock prefix is among them.
MUTABLE_PREFIXES = ("locks/",)


def kept_immutable(name: str) -> bool:
    """Whether ``immutable_days`` applies to a new object of this name."""
    return not name.startswith(MUTABLE_PREFIXES)
