"""Errors of the runbook engine, under the one hierarchy of ``drorch.errors``.

    DrorchError
    ├── UsageError
    │   └── RunNotResumable     the run cannot be resumed (finished, busy, changed)
    └── RunbookError            a runbook could not do its work; exit 1
        ├── StepFailed          one attempt of a step failed; ``permanent`` stops retries
        │   └── StepTimedOut    the step's deadline passed
        └── RunFailed           the run stopped at a step (after undo, unless --no-undo)

``StepFailed`` carries ``tail``: the last lines of what the step printed (a
script's output, a probe's last answers), shown to the operator with the error.
Provider adapters raise ``StepFailed(permanent=True)`` for errors that a retry
cannot fix (permission denied, AMI not found, quota exceeded), so a runbook
does not burn its RTO retrying them.
"""

from __future__ import annotations

from drorch.errors import DrorchError, UsageError


class RunNotResumable(UsageError):
    """``runbook resume`` was asked for a run that cannot continue."""


class RunbookError(DrorchError):
    """Base of errors raised while a runbook runs."""


class StepFailed(RunbookError):
    """One attempt of a step failed; retried unless ``permanent``."""

    def __init__(self, message: str, *, hint: str | None = None, permanent: bool = False,
                 tail: str = "") -> None:
        super().__init__(message, hint=hint)
        self.permanent = permanent
        self.tail = tail


class StepTimedOut(StepFailed):
    """The step's deadline passed; its work was abandoned (scripts are killed)."""

    def __init__(self, message: str, *, tail: str = "") -> None:
        super().__init__(message, permanent=True, tail=tail)


class RunFailed(RunbookError):
    """A run stopped at ``step``; ``str()`` is the sentence the operator reads."""

    def __init__(self, message: str, *, run_id: str, step: str, tail: str = "",
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.run_id = run_id
        self.step = step
        self.tail = tail
