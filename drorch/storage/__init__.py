"""Opening storage: the registry's adapter for a target, wrapped in what every store gets.

``open_store(config)`` looks up ``store:SCHEME`` in ``drorch.registry``, opens
the adapter with the plain ``StoreConfig`` and wraps it in ``RetryingStore``
(``retry.py``): adapters hold no retry loops, like restic's backend wrappers.
"""

from __future__ import annotations

from drorch import registry
from drorch.ports.config import StoreConfig
from drorch.ports.store import ObjectStore
from drorch.storage.retry import RetryingStore

__all__ = ["open_store"]


def open_store(config: StoreConfig) -> ObjectStore:
    """Open the adapter for a target's URL scheme, wrapped in retries; the SDK is imported now."""
    return RetryingStore(open_adapter(config))


def open_adapter(config: StoreConfig) -> ObjectStore:
    """The bare adapter, without retries (the conformance suite checks adapters directly)."""
    factory = registry.load("store", config.scheme)
    return factory(config)  # type: ignore[no-any-return]
