"""A directory's tree is stored once everything it holds is: its files' blobs, its subtrees.

``when_all`` runs that last step in a callback of whichever Future finishes last,
instead of waiting for them in the walk: waiting would drain the worker pool at the
end of every directory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_chain = threading.local()


def when_all(pending: list[Future[Any]], compute: Callable[[], T]) -> Future[T]:
    """A Future of ``compute()``, run once every one of ``pending`` is done (at once if none)."""
    result: Future[T] = Future()
    remaining = [len(pending)]
    lock = threading.Lock()

    def finish() -> None:
        try:
            result.set_result(compute())
        except BaseException as err:  # noqa: BLE001 - handed to whoever waits on the result
            result.set_exception(err)

    def one_done(_future: Future[Any]) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            _flat(finish)

    if not pending:
        _flat(finish)
    for future in pending:
        future.add_done_callback(one_done)
    return result


def _flat(job: Callable[[], None]) -> None:
    """Run ``job`` now, unless this thread is already inside such a job: then right after it.

    A tree finishing completes its parent's Future, whose callback finishes the parent,
    and so on up: run as nested calls, a deep source overflowed the stack inside a
    callback, where the error is only logged and the root tree's Future never resolved.
    """
    queue: list[Callable[[], None]] | None = getattr(_chain, "queue", None)
    if queue is not None:
        queue.append(job)
        return
    _chain.queue = queue = [job]
    try:
        while queue:
            queue.pop()()
    finally:
        _chain.queue = None
