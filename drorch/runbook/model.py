"""The runbook file (SPEC §5, ``kind: Runbook``) as frozen pydantic models.

A step is a mapping with ``name`` and exactly one action key (``launch``,
``wait``, ``script``, ``restore``, ``dns``, ``approve``, ``notify``,
``fence``, ``reverse``), plus optional ``timeout``, ``retries``, ``when`` and
``undo`` (itself a step body: one action key, optionally ``timeout`` and
``retries``). A ``Runbook`` that exists is valid: every template refers to a
variable that is declared and to an output that an earlier step produces,
and (when loaded with its policy) every recovery and mirror it names exists.

``timeout`` bounds the whole step, every attempt and pause included; without
it each action has its own default (``launch`` 15m, ``wait`` 10m, ``approve``
1h, ``restore``/``reverse`` 1h, ``notify`` 1m, others 5m). ``retries`` adds
attempts with exponential backoff (1s, 2s, 4s ... at most 30s); a ``wait``
without ``retries`` probes every ``interval`` until its timeout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, ModelWrapValidatorHandler, ValidationInfo, model_validator

from drorch.policy import load_yaml, raise_problems, validate_document, validate_together
from drorch.policy.fields import Duration, Name, NonEmpty, StrictModel
from drorch.policy.validation import reject
from drorch.ports.errors import UsageError
from drorch.runbook.checks import runbook_problems
from drorch.runbook.steps import ACTIONS, Action
from drorch.runbook.steps.approve import Approve
from drorch.runbook.steps.dns import Dns
from drorch.runbook.steps.fence import Fence
from drorch.runbook.steps.launch import Launch
from drorch.runbook.steps.notify import Notify
from drorch.runbook.steps.restore import Restore
from drorch.runbook.steps.reverse import Reverse
from drorch.runbook.steps.script import Script
from drorch.runbook.steps.wait import Wait
from drorch.runbook.templating import format_value

if TYPE_CHECKING:
    from drorch.policy import Policy

__all__ = ["KIND", "Metadata", "Runbook", "Step", "StepBody", "load_runbook"]

KIND = "Runbook"
_ONE_ACTION = ("a step needs exactly one action key ({keys}); found {found}, "
               "e.g. {{launch: {{recovery: web-vm}}}}")


def _check_one_action(body: _Actions) -> None:
    given = [key for key in ACTIONS if getattr(body, key) is not None]
    if len(given) != 1:
        found = " and ".join(given) if given else "none"
        reject(_ONE_ACTION.format(keys=", ".join(ACTIONS), found=found))


class _Body:
    """Accessors shared by ``Step`` and ``StepBody`` (both hold exactly one action).

    Declares no annotations: pydantic would take them for fields of both models.
    """

    @property
    def action_key(self) -> str:
        return next(key for key in ACTIONS if getattr(self, key) is not None)

    @property
    def action(self) -> Action:
        action: Action = getattr(self, self.action_key)
        return action

    def timeout_s(self) -> float:
        timeout = self.timeout or self.action.DEFAULT_TIMEOUT  # type: ignore[attr-defined]
        return float(timeout.total_seconds())

    def attempts(self) -> float:
        """How many times the action may be tried (``retries`` + 1, or the action's default)."""
        retries: int | None = self.retries  # type: ignore[attr-defined]
        return retries + 1 if retries is not None else self.action.default_attempts()


class _Actions(_Body, StrictModel):
    """The action keys (exactly one is given) and how to run it; ``Step`` and ``StepBody`` share them."""

    launch: Launch | None = None
    wait: Wait | None = None
    script: Script | None = None
    restore: Restore | None = None
    dns: Dns | None = None
    approve: Approve | None = None
    notify: Notify | None = None
    fence: Fence | None = None
    reverse: Reverse | None = None
    timeout: Duration | None = None
    retries: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_action(self) -> _Actions:
        _check_one_action(self)
        return self


class StepBody(_Actions):
    """An ``undo``: one action, with its own ``timeout`` and ``retries``."""


class Step(_Actions):
    """One step: ``name``, one action key, and how to run and compensate it."""

    name: Name
    # None: always runs. A string is a template condition (see templating.evaluate_when).
    when: str | bool | None = None
    # None: nothing to compensate. Undo runs only for steps that finished, newest first.
    undo: StepBody | None = None


class Metadata(StrictModel):
    name: Name
    description: str | None = None


VarValue = str | int | float | bool | None


class Runbook(StrictModel):
    """A whole ``kind: Runbook`` document; see the module docstring for its guarantees."""

    api_version: Literal["drorch/v1"] = Field(alias="apiVersion")
    kind: Literal["Runbook"]
    metadata: Metadata
    # A null value makes the variable required: it must come from --var.
    vars: dict[str, VarValue] = Field(default_factory=dict)
    steps: Annotated[tuple[Step, ...], NonEmpty]

    @model_validator(mode="wrap")
    @classmethod
    def _whole_runbook(cls, data: Any, handler: ModelWrapValidatorHandler[Runbook],
                       info: ValidationInfo) -> Runbook:
        kind = data.get("kind") if isinstance(data, Mapping) else None
        if isinstance(kind, str) and kind != KIND:
            message = f"invalid value '{kind}'; use '{KIND}' (this is not a runbook file)"
            raise_problems([(("kind",), message)], cls.__name__)
        return validate_together(data, handler, runbook_problems(data, info.context), cls.__name__)

    @property
    def name(self) -> str:
        return self.metadata.name

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise UsageError(f"runbook {self.name} has no step '{name}'",
                         hint=f"its steps: {', '.join(s.name for s in self.steps)}")

    def resolve_vars(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """Declared vars with ``--var`` overrides applied; every var must end up with a value."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.vars))
        if unknown:
            declared = ", ".join(self.vars) or "none"
            raise UsageError(f"unknown --var {', '.join(unknown)} for runbook {self.name}",
                             hint=f"it declares: {declared}")
        values = {k: format_value(v) for k, v in self.vars.items() if v is not None}
        values.update(overrides)
        missing = [k for k in self.vars if k not in values]
        if missing:
            raise UsageError(f"runbook {self.name} needs a value for {', '.join(missing)}",
                             hint=" ".join(f"--var {k}=VALUE" for k in missing))
        return values

    def needs_policy(self) -> list[str]:
        """Names of steps whose action reads the policy (recoveries, mirrors)."""
        out = []
        for step in self.steps:
            for body in (step, step.undo):
                if body is None:
                    continue
                action = body.action
                if isinstance(action, Launch | Restore | Reverse) or (
                        isinstance(action, Fence) and action.recovery is not None):
                    out.append(step.name)
        return list(dict.fromkeys(out))

    def recoveries(self) -> list[str]:
        """Recoveries this runbook launches (their ``rto`` is the run's objective)."""
        return [s.action.recovery for s in self.steps if isinstance(s.action, Launch)]


def load_runbook(path: str | os.PathLike[str], *, policy: Policy | None = None) -> Runbook:
    """Load and validate the runbook at ``path``; with ``policy``, check the names it uses.

    Raises ``PolicyError`` (exit code 2) listing every problem as
    ``file:line key.path: message``; never returns a partial runbook.
    """
    return validate_document(Runbook, load_yaml(path), context={"policy": policy})
