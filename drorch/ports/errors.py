"""The one exception hierarchy of drorch.

Every error carries what was being done, where (target, file, path) and a hint
for the operator; the CLI renders it once, as one sentence on stderr, and maps
it to an exit code (SPEC §3). Tracebacks are shown only with ``--debug``.

    DrorchError                 base; exit 1
    ├── UsageError              bad command-line input; exit 2
    │   └── RunNotResumable     the run cannot be resumed (finished, busy, changed)
    ├── PolicyError             the policy file is invalid; exit 2; holds Diagnostics
    ├── SecretError             a key reference (env:/file:) cannot be resolved
    ├── SourceError             a source path is missing or unreadable
    ├── StoreError              the object store failed
    │   ├── ObjectNotFound      a named object does not exist
    │   ├── ObjectExists        create-if-absent found the name taken
    │   ├── StoreFull           no space left (disk full, quota)
    │   ├── AccessDenied        credentials missing, expired or not allowed
    │   ├── ObjectLocked        deletion refused: the object is under retention
    │   └── TransientStoreError throttled or briefly unavailable; retried
    ├── RepositoryError         the repository cannot be used
    │   ├── RepositoryNotFound  no repository at the target
    │   ├── WrongPassword       no key file opens with the given key
    │   ├── RepositoryLocked    another process holds a conflicting lock
    │   └── IntegrityError      stored data is damaged; exit 3
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

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_OBJECTIVES_MISSED = 3


class DrorchError(Exception):
    """Base of all errors drorch expects; ``str()`` is one operator-readable sentence."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message.rstrip('.')}; {self.hint}"
        return self.message


class UsageError(DrorchError):
    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a YAML document: where it is and how to fix it."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PolicyError(DrorchError):
    """The policy (or runbook) file is invalid; every problem is listed, not just the first."""

    exit_code = EXIT_USAGE

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


class SecretError(DrorchError):
    pass


class SourceError(DrorchError):
    pass


class StoreError(DrorchError):
    pass


class ObjectNotFound(StoreError):
    pass


class ObjectExists(StoreError):
    pass


class StoreFull(StoreError):
    pass


class AccessDenied(StoreError):
    pass


class ObjectLocked(StoreError):
    pass


class TransientStoreError(StoreError):
    """Throttling, timeouts, 5xx: the retry wrapper tries again before giving up."""


class RepositoryError(DrorchError):
    pass


class RepositoryNotFound(RepositoryError):
    pass


class WrongPassword(RepositoryError):
    pass


class RepositoryLocked(RepositoryError):
    pass


class IntegrityError(RepositoryError):
    exit_code = EXIT_OBJECTIVES_MISSED


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


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (the CLI turns it into this, like Ctrl-C into KeyboardInterrupt), so
    ``finally`` blocks run: locks are released, hooks' ``post`` and cleanup run."""
