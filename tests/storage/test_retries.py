"""The retry wrapper around every store: transient failures retried with backoff, nothing else.

The inner store here is a real LocalStore behind a shim that fails a given number of
calls first (the fault); what is checked is how many calls the wrapper makes and what
reaches the caller.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drorch.ports.errors import AccessDenied, TransientStoreError
from drorch.providers.local import LocalStore
from drorch.storage.retry import RetryingStore


class Failing:
    """A LocalStore whose next ``failures`` calls of ``get`` raise ``error`` first."""

    def __init__(self, root: Path, failures: int, error: Exception) -> None:
        self.store, self.failures, self.error, self.calls = LocalStore(root), failures, error, 0

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise self.error
        return self.store.get(name, offset, length)


def _wrapped(tmp_path: Path, failures: int, error: Exception,
             attempts: int = 4) -> tuple[RetryingStore, Failing]:
    inner = Failing(tmp_path / "store", failures, error)
    inner.store.put("config", b"stored")
    return RetryingStore(inner, attempts=attempts, max_wait_s=0.01), inner  # type: ignore[arg-type]


def test_a_store_that_does_not_fail_is_called_once_without_the_retry_machinery(tmp_path: Path) -> None:
    store, inner = _wrapped(tmp_path, 0, TransientStoreError("throttled"))
    assert store.get("config") == b"stored" and store.get("config") == b"stored"
    assert inner.calls == 2 and "_retrying" not in vars(store), "tenacity was set up for calls that succeeded"


def test_transient_failures_are_retried_until_a_call_succeeds(tmp_path: Path) -> None:
    store, inner = _wrapped(tmp_path, 3, TransientStoreError("throttled"))
    assert store.get("config") == b"stored"
    assert inner.calls == 4


def test_retries_stop_after_the_attempts_allowed_and_the_failure_reaches_the_caller(tmp_path: Path) -> None:
    store, inner = _wrapped(tmp_path, 10, TransientStoreError("throttled"), attempts=4)
    with pytest.raises(TransientStoreError, match="throttled"):
        store.get("config")
    assert inner.calls == 4, "the first call counts as an attempt"


def test_a_failure_that_is_not_transient_is_not_retried(tmp_path: Path) -> None:
    store, inner = _wrapped(tmp_path, 1, AccessDenied("access denied to config"))
    with pytest.raises(AccessDenied):
        store.get("config")
    assert inner.calls == 1
