"""Running one step body: render it, try it within its deadline, retry with backoff.

The step's ``timeout`` is one deadline for all of its attempts and pauses.
Each attempt runs in a worker thread, so even an SDK call that hangs cannot
hold the run past the deadline: the engine stops waiting, cancels the
deadline (polling code and scripts see it and stop; scripts are killed with
their process group) and reports the step as timed out.

Retries (tenacity) follow a failed attempt unless the failure is permanent
(``StepFailed.permanent``: a retry cannot fix it) or no attempts or time are
left. Pauses grow exponentially (1s, 2s, 4s ... capped at 30s) with jitter;
a ``wait`` step pauses its fixed ``interval`` instead.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import tenacity
from pydantic import ValidationError

from drorch.policy.document import render_path
from drorch.policy.durations import format_duration
from drorch.ports.deadline import Deadline
from drorch.ports.errors import DrorchError, StepFailed, StepTimedOut
from drorch.runbook.steps import Action
from drorch.runbook.templating import Scope, TemplateError, render_value

__all__ = ["StepAttempts", "call_with_deadline", "render_action"]

T = TypeVar("T")

_CLEANUP_GRACE_S = 8.0  # time a timed-out attempt gets to kill its processes and report
_TAIL_LINES = 20


def render_action(action: Action, scope: Scope) -> Action:
    """``action`` with every template resolved and its parameters validated again."""
    raw = action.model_dump(by_alias=True, exclude_unset=True)
    try:
        rendered = render_value(raw, scope)
    except TemplateError as err:
        raise StepFailed(str(err), permanent=True) from None
    try:
        return type(action).model_validate(rendered)
    except ValidationError as err:
        first = err.errors()[0]
        where = render_path(tuple(p for p in first["loc"] if isinstance(p, str | int)))
        detail = first.get("ctx", {}).get("message") or first["msg"]
        raise StepFailed(f"after templates were filled in, {action.KEY}"
                         f"{'.' + where if where else ''} is invalid: {detail}", permanent=True) from None


def call_with_deadline(fn: Callable[[], T], deadline: Deadline, doing: str) -> T:
    """``fn()`` in a worker thread; ``StepTimedOut`` if it is not done by ``deadline``."""
    box: dict[str, Any] = {}
    finished = threading.Event()

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = error
        finally:
            finished.set()

    threading.Thread(target=work, name=f"drorch-step-{doing}", daemon=True).start()
    try:
        remaining = deadline.remaining()
        done = finished.wait(remaining if remaining != float("inf") else None)
    except KeyboardInterrupt:
        deadline.cancel()
        finished.wait(_CLEANUP_GRACE_S)
        raise
    if not done:
        deadline.cancel()
        finished.wait(_CLEANUP_GRACE_S)
        error = box.get("error")
        if isinstance(error, StepTimedOut):
            raise error  # the work noticed the deadline itself and says what it stopped
        tail = error.tail if isinstance(error, StepFailed) else ""
        raise StepTimedOut(f"{doing} did not finish before the deadline", tail=tail)
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


class StepAttempts:
    """Tries one action until it succeeds, fails permanently, or runs out of attempts or time."""

    def __init__(self, *, backoff_base: float = 1.0, backoff_max: float = 30.0,
                 on_attempt: Callable[[int], None] = lambda n: None,
                 on_retry: Callable[[int, StepFailed, float], None] = lambda n, e, s: None) -> None:
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.on_attempt = on_attempt
        self.on_retry = on_retry
        self._backoff = (tenacity.wait_exponential(multiplier=backoff_base, max=backoff_max)
                         + tenacity.wait_random(0, backoff_base / 2))
        self.log_lines: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self.attempts = 0

    def log(self, line: str) -> None:
        self.log_lines.append(line)

    @property
    def tail(self) -> str:
        return "\n".join(self.log_lines)

    def run(self, action: Action, scope: Scope, *, timeout_s: float, max_attempts: float,
            attempt_fn: Callable[[Action, int, Deadline], dict[str, Any]]) -> tuple[Action, dict[str, Any]]:
        """Render and run ``action`` via ``attempt_fn``; returns the rendered action and outputs."""
        deadline = Deadline(timeout_s)
        last: list[StepFailed] = []
        rendered: list[Action] = [action]

        def one_attempt() -> dict[str, Any]:
            if self.attempts and deadline.expired:
                raise StepTimedOut("no time left for another attempt")
            self.attempts += 1
            self.on_attempt(self.attempts)
            try:
                rendered[0] = render_action(action, scope)
                return call_with_deadline(lambda: attempt_fn(rendered[0], self.attempts, deadline),
                                          deadline, action.KEY)
            except StepFailed as error:
                last.append(error)
                raise
            except DrorchError as error:  # a clear error from the core (unknown name, no key...)
                last.append(StepFailed(str(error), permanent=True))
                raise last[-1] from None

        def pause(state: tenacity.RetryCallState) -> float:
            fixed = rendered[0].retry_pause(state.attempt_number)
            if fixed is None:
                fixed = self._backoff(state)
            return min(fixed, deadline.remaining())

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.on_retry(state.attempt_number, last[-1], state.upcoming_sleep)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(int(max_attempts)) if max_attempts != float("inf")
            else tenacity.stop_never,
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, StepFailed) and not e.permanent and not deadline.expired),
            wait=pause, sleep=deadline.sleep, before_sleep=before_sleep, reraise=True)
        try:
            outputs = retrying(one_attempt)
        except StepFailed as error:
            raise self._final(error, last, deadline, timeout_s) from None
        return rendered[0], outputs

    def _final(self, error: StepFailed, last: list[StepFailed], deadline: Deadline,
               timeout_s: float) -> StepFailed:
        """The error the operator reads: what failed last, and that time ran out if it did."""
        tail = error.tail or self.tail
        attempts = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        if isinstance(error, StepTimedOut) or deadline.expired:
            before = next((e for e in reversed(last) if not isinstance(e, StepTimedOut)), None)
            limit = format_duration(timedelta(seconds=timeout_s))
            why = f"; last error: {before.message}" if before is not None else f" ({error.message})"
            return StepTimedOut(f"timed out after {limit} ({attempts}){why}", tail=tail)
        if self.attempts > 1:
            return StepFailed(f"{error.message} (after {attempts})", hint=error.hint,
                              permanent=error.permanent, tail=tail)
        error.tail = tail
        return error
