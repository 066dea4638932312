"""What every step action shares: its parameter model, its outputs, its context.

An action is a pydantic model of its parameters (the mapping under the action
key, e.g. ``launch: {recovery: web-vm}``) with a ``run`` method. Class-level
facts the engine and the validator read:

- ``OUTPUTS``: the keys ``run`` returns, so ``{{ outputs.STEP.KEY }}`` can be
  checked when the file is loaded (``declared_outputs`` may add per-step keys);
- ``IDEMPOTENT``: whether running it twice is harmless, which decides whether
  ``runbook resume`` may re-run it after a crash interrupted it;
- ``DEFAULT_TIMEOUT``: its deadline when the step sets no ``timeout``;
- ``DEFAULT_ATTEMPTS``: attempts when the step sets no ``retries`` (``wait``
  probes until its deadline, everything else tries once).

Parameters are validated twice: as written (strings may still hold templates,
so validators skip values that contain ``{{``) and again after rendering,
right before the step runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from drorch.policy.fields import StrictModel
from drorch.runbook.deadline import Deadline

if TYPE_CHECKING:
    from drorch.policy import Policy
    from drorch.runbook.protocols import Backends

__all__ = ["Action", "Approvals", "StepContext", "is_template"]


def is_template(value: Any) -> bool:
    """True for a string that still holds ``{{ ... }}`` (checked again once rendered)."""
    return isinstance(value, str) and "{{" in value


class Approvals:
    """How an ``approve`` step gets its answer (the engine provides the real one)."""

    def wait(self, step: str, message: str, deadline: Deadline) -> str:
        """Block until approved and return who approved; raise ``StepFailed`` otherwise."""
        raise NotImplementedError


@dataclass
class StepContext:
    """Everything one attempt of a step may use besides its own parameters."""

    run_id: str
    step: str
    phase: str  # "do" or "undo"
    attempt: int
    deadline: Deadline
    backends: Backends
    base_dir: Path  # the runbook file's directory: relative paths start here
    policy: Policy | None = None
    policy_path: Path | None = None
    approvals: Approvals = field(default_factory=Approvals)
    log: Callable[[str], None] = lambda line: None  # lines for the step's output tail
    on_pid: Callable[[int], None] = lambda pid: None  # a child process started (journalled)
    sandbox: bool = False  # drorch test: never touch production repositories

    def require_policy(self, why: str) -> Policy:
        from drorch.runbook.errors import StepFailed

        if self.policy is None:
            raise StepFailed(f"{why} needs the policy that defines it", permanent=True,
                             hint="pass --policy POLICY")
        return self.policy


class Action(StrictModel):
    """Base of every action's parameters; subclasses implement ``run``."""

    KEY: ClassVar[str] = ""
    OUTPUTS: ClassVar[tuple[str, ...]] = ()
    IDEMPOTENT: ClassVar[bool] = True
    DEFAULT_TIMEOUT: ClassVar[timedelta] = timedelta(minutes=5)
    DEFAULT_ATTEMPTS: ClassVar[float] = 1

    @classmethod
    def declared_outputs(cls, raw: Any) -> tuple[str, ...]:
        """Output keys a step with these (raw, unvalidated) parameters produces."""
        return cls.OUTPUTS

    @property
    def idempotent(self) -> bool:
        return self.IDEMPOTENT

    def default_attempts(self) -> float:
        return self.DEFAULT_ATTEMPTS

    def retry_pause(self, attempt: int) -> float | None:
        """Seconds to pause before attempt ``attempt + 1``; None for exponential backoff."""
        return None

    def summary(self) -> str:
        """One line for the plan and the timeline (values already rendered)."""
        return ", ".join(f"{k}={v}" for k, v in self.model_dump(exclude_defaults=True).items())

    def run(self, ctx: StepContext) -> dict[str, Any]:
        """Do the work once; return the outputs (``OUTPUTS`` keys); raise ``StepFailed``."""
        raise NotImplementedError


UNLIMITED = math.inf
