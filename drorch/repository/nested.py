"""Running a recursive walk without recursion, whatever the depth of the tree.

Trees nest as deep as the file system lets directories nest (thousands of
levels); Python's stack does not. A walker is written as a generator that
``yield``s the generator of each sub-walk and receives its return value, so it
reads like the recursive function it replaces, and ``run_nested`` drives the
calls from an explicit stack: no RecursionError, no depth limit.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

R = TypeVar("R")
Walk = Generator["Walk[Any]", Any, R]


def run_nested(walk: Walk[R]) -> R:
    """Drive ``walk`` and every sub-walk it yields; returns what ``walk`` returns.

    A sub-walk's exception is raised inside the walk that yielded it, at its
    ``yield``, exactly where a recursive call would have raised it.
    """
    stack: list[Walk[Any]] = [walk]
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            if error is not None:
                thrown, error = error, None
                call = stack[-1].throw(thrown)
            else:
                call = stack[-1].send(value)
        except StopIteration as done:
            stack.pop()
            if not stack:
                return done.value  # type: ignore[no-any-return]
            value = done.value
            continue
        except BaseException as err:
            stack.pop()
            if not stack:
                raise
            error = err.with_traceback(None)  # else the traceback grows by a frame per level
            continue
        stack.append(call)
        value = None
