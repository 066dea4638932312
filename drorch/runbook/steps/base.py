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
from drorch.policy.probes import is_template
from drorch.ports.deadline import Deadline

if TYPE_CHECKING:
    from drorch.policy import Policy
    from drorch.ports.recovery import Backends

__all__ = ["Action", "Approvals", "StepContext", "is_template", "restore_context", "sandbox_keys",
           "sandboxed"]


def sandboxed(policy: Policy, sandbox: Path, names: set[str]) -> Policy:
    """``policy`` with the targets ``names`` moved to scratch repositories under ``sandbox``.

    Under ``drorch test`` steps never write production repositories: ``reverse``
    writes scratch copies, and ``restore`` reads a scratch copy when this run
    wrote one, else the real target, read-only.
    """
    targets = []
    for target in policy.targets:
        scratch = sandbox / "repos" / target.name
        targets.append(target.model_copy(update={"url": f"file://{scratch}", "immutable_days": None})
                       if target.name in names else target)
    return policy.model_copy(update={"targets": tuple(targets)})


def restore_context(policy: Policy, sandbox: Path | None, target: str) -> tuple[Policy, Any]:
    """Which policy and keys read ``target``: its scratch copy when this sandboxed run wrote
    one (with the sandbox's key), else the real target with the policy's own key."""
    if sandbox is not None and (sandbox / "repos" / target).exists():
        return sandboxed(policy, sandbox, {target}), sandbox_keys(sandbox)
    from drorch.secrets import key_source

    return policy, key_source(policy.encryption)


def sandbox_keys(sandbox: Path) -> Any:
    """The password of scratch repositories: made once per sandbox, never a production key."""
    import secrets

    from drorch.secrets import StaticPassword

    key_file = sandbox / "repos" / "key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(16))
    return StaticPassword(key_file.read_text().encode())


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
    # drorch test: a scratch directory; steps write there instead of production paths/repos.
    sandbox: Path | None = None

    def require_policy(self, why: str) -> Policy:
        from drorch.ports.errors import StepFailed

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
