"""Retries as a wrapper around any ObjectStore, so adapters hold no retry loops.

Only ``TransientStoreError`` (throttling, 5xx, timeouts, dropped connections)
is retried, with exponential backoff and jitter; everything else — missing
bucket, access denied, not found — fails at once, because retrying it only
delays the message the operator needs. Every operation of the protocol is
safe to repeat: objects are content-addressed, ``delete`` of a missing name is
not an error, and a repeated ``exclusive`` put that had in fact succeeded
reports ``ObjectExists``, which callers of exclusive puts handle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from drorch.ports.errors import TransientStoreError
from drorch.ports.store import ObjectInfo, ObjectStore, get_into, reads_into

if TYPE_CHECKING:
    from tenacity import Retrying

T = TypeVar("T")


class RetryingStore:
    def __init__(self, inner: ObjectStore, *, attempts: int = 8, max_wait_s: float = 20.0,
                 give_up_after_s: float = 300.0) -> None:
        self.inner = inner
        self._attempts, self._max_wait_s, self._give_up_after_s = attempts, max_wait_s, give_up_after_s

    def _call(self, fn: Callable[[], T]) -> T:
        """``fn()``; after a transient failure, again with backoff, ``attempts`` calls in all.

        The first call is made directly and tenacity is imported only once one fails:
        a run whose store never fails (most) neither imports it (~10 ms of every start)
        nor pays its bookkeeping on each call. The call that failed counts as tenacity's
        first attempt, so the waits and the number of calls are as they always were; the
        time given up after (``give_up_after_s``) counts from that first failure.
        """
        try:
            return fn()
        except TransientStoreError as err:
            failed: list[TransientStoreError] = [err]

        def attempt() -> T:
            if failed:
                raise failed.pop()  # the first attempt, already made
            return fn()

        return self._retrying(attempt)

    @cached_property
    def _retrying(self) -> Retrying:
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            stop_after_delay,
            wait_random_exponential,
        )

        return Retrying(
            retry=retry_if_exception_type(TransientStoreError),
            wait=wait_random_exponential(multiplier=0.2, max=self._max_wait_s),
            stop=stop_after_attempt(self._attempts) | stop_after_delay(self._give_up_after_s),
            reraise=True,
        )

    @property
    def location(self) -> str:
        return self.inner.location

    def put(self, name: str, data: bytes | bytearray | memoryview, *, exclusive: bool = False) -> None:
        self._call(lambda: self.inner.put(name, data, exclusive=exclusive))

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._call(lambda: self.inner.get(name, offset, length))

    def get_into(self, name: str, offset: int, into: memoryview) -> int:
        return self._call(lambda: get_into(self.inner, name, offset, into))

    @property
    def reads_into(self) -> bool:
        return reads_into(self.inner)

    def exists(self, name: str) -> bool:
        return self._call(lambda: self.inner.exists(name))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Listings are collected whole inside the retry, so a retry never yields twice."""
        return iter(self._call(lambda: list(self.inner.list(prefix))))

    def delete(self, name: str) -> None:
        self._call(lambda: self.inner.delete(name))
