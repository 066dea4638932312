"""``--dry-run`` as a preflight: for each step, does what it needs exist *now*?

A plan that renders is not a recovery that works: the shipped failover once
passed ``validate`` and ``--dry-run`` and then failed at its first real step
because the mirror had no data snapshot. So the dry run asks, step by step
and changing nothing:

- ``launch``: the mirror's newest snapshot and its age against the RPO (read
  from the repository, with the repository key), and from the provider, with
  the credentials in use: image, subnet, security groups, the data snapshot;
- ``restore``: the mirror's newest snapshot at the target and its age;
- ``dns``: the zone exists and is reachable (Route53: the hosted zone; RFC
  2136: the server answers the zone's SOA, with the TSIG key loaded);
- ``fence`` of an instance: it exists (and in which state); of a script, and
  ``script`` and ``wait: {command}``: the program is there to run;
- ``notify`` to SNS: the topic exists and the credentials may read it (a
  webhook is not called: a POST would be a message);
- ``wait`` on http/tcp, ``approve``, ``reverse``: nothing that can be proven
  before the run; they are listed as such.

A step whose parameters come from earlier steps' outputs (``{{ outputs.vm.ip
}}``) is checked as far as it can be and marked "at run time". The first
failing check names the step that would fail; the CLI exits 1 on it.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drorch.ports.errors import DrorchError, StepFailed
from drorch.runbook.attempts import render_action
from drorch.runbook.freshness import mirror_freshness
from drorch.runbook.steps import Action, find_recovery
from drorch.runbook.steps.dns import Dns
from drorch.runbook.steps.fence import Fence
from drorch.runbook.steps.launch import Launch
from drorch.runbook.steps.notify import Notify
from drorch.runbook.steps.restore import Restore
from drorch.runbook.steps.script import Script
from drorch.runbook.steps.wait import Wait
from drorch.runbook.templating import Scope, evaluate_when, parse_refs

if TYPE_CHECKING:
    from drorch.policy import Policy
    from drorch.ports.recovery import Backends
    from drorch.runbook.model import Runbook, Step

__all__ = ["Check", "Preflight", "run_preflight"]

_TIMEOUT_S = 5.0
_PLACEHOLDER = re.compile(r"<[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+>")


@dataclass(frozen=True)
class Check:
    """One thing a step needs, and whether it is there."""

    step: str
    action: str
    what: str  # "data", "image, subnet, groups, data snapshot", "dns zone", ...
    state: str  # ok | failed | at run time | nothing to check | skipped
    detail: str

    @property
    def failed(self) -> bool:
        return self.state == "failed"


@dataclass
class Preflight:
    runbook: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if c.failed), None)

    def to_json(self) -> dict[str, Any]:
        return {"runbook": self.runbook, "ok": self.ok, "checks": [asdict(c) for c in self.checks]}


@dataclass
class _Context:
    policy: Policy | None
    backends: Backends
    base_dir: Path
    now: float


def run_preflight(runbook: Runbook, variables: dict[str, str], *, policy: Policy | None,
                  backends: Backends, base_dir: Path) -> Preflight:
    """Check every step of ``runbook`` (module docstring); never changes anything."""
    ctx = _Context(policy, backends, base_dir, time.time())
    scope = Scope(vars=variables, placeholders=True)
    out = Preflight(runbook.name)
    for step in runbook.steps:
        out.checks += _step_checks(step, scope, ctx)
    return out


def _step_checks(step: Step, scope: Scope, ctx: _Context) -> list[Check]:
    key = step.action_key
    try:
        runs = evaluate_when(step.when, scope) if not _uses_outputs(step.when) else True
    except DrorchError as err:
        return [Check(step.name, key, "when", "failed", str(err))]
    if not runs:
        return [Check(step.name, key, "when", "skipped", f"when: {step.when} is false")]
    try:
        action = render_action(step.action, scope)
    except StepFailed as err:
        return [Check(step.name, key, "parameters", "failed", err.message)]
    checker = _CHECKERS.get(type(action))
    if checker is None or (isinstance(action, Wait) and action.command is None):
        return [Check(step.name, key, "-", "nothing to check", "can only be proven while the run goes")]
    checks = []
    for what, probe in checker(action, ctx):
        if probe is None:
            checks.append(Check(step.name, key, what, "at run time", "depends on earlier steps' outputs"))
            continue
        try:
            checks.append(Check(step.name, key, what, "ok", probe()))
        except (StepFailed, DrorchError) as err:
            checks.append(Check(step.name, key, what, "failed", str(err)))
    return checks


def _uses_outputs(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return any(ref.kind == "outputs" for ref in parse_refs(text))


Probe = Callable[[], str] | None
Checker = Callable[[Any, _Context], list[tuple[str, Probe]]]


def _data(ctx: _Context, mirror: str, target: str | None = None) -> Probe:
    def probe() -> str:
        assert ctx.policy is not None
        found = mirror_freshness(ctx.policy, mirror, None, target=target, now=ctx.now)
        if found.problem is not None:
            raise StepFailed(found.problem)
        return found.describe()
    return probe


def _launch(action: Launch, ctx: _Context) -> list[tuple[str, Probe]]:
    assert ctx.policy is not None
    recovery = find_recovery(ctx.policy, action.recovery)
    spec = action.spec_for(recovery, run_id="preflight", step="preflight")

    def cloud() -> str:
        compute = ctx.backends.compute(recovery.provider, recovery.instance.region)
        return f"{compute.location}: " + "; ".join(compute.check_launch(spec))
    checks: list[tuple[str, Probe]] = []
    if action.snapshot != "none":
        checks.append((f"data of mirror {recovery.from_}", _data(ctx, recovery.from_)))
    return [*checks, ("image, subnet, groups, data snapshot", cloud)]


def _restore(action: Restore, ctx: _Context) -> list[tuple[str, Probe]]:
    return [(f"data of mirror {action.mirror}", _data(ctx, action.mirror, action.target))]


def _dns(action: Dns, ctx: _Context) -> list[tuple[str, Probe]]:
    def zone() -> str:
        return ctx.backends.dns(action.provider).zone_check(action.change(), _TIMEOUT_S)
    later = _placeholder(action.zone, action.server, action.tsig)
    return [(f"zone {action.zone} ({action.provider})", None if later else zone)]


def _program(argv: tuple[str, ...] | list[str], ctx: _Context) -> Probe:
    def probe() -> str:
        program = argv[0]
        local = ctx.base_dir / program
        found = shutil.which(program) or (str(local) if "/" in program and local.exists() else None)
        if found is None:
            raise StepFailed(f"program {program} is not on PATH (nor beside the runbook)")
        return f"{program} is {found}"
    return probe


def _fence(action: Fence, ctx: _Context) -> list[tuple[str, Probe]]:
    if action.script is not None:
        return [("fence script", _program(action.script, ctx))]

    def instance() -> str:
        assert action.instance is not None
        found = action.compute_for(ctx.policy, ctx.backends).find(action.instance)
        if found is None:
            raise StepFailed(f"instance {action.instance} not found, so it cannot be fenced")
        return f"instance {action.instance} is {found.id} ({found.state})"
    return [(f"instance {action.instance}", None if _placeholder(action.instance) else instance)]


def _notify(action: Notify, ctx: _Context) -> list[tuple[str, Probe]]:
    to = action.sns or action.webhook or ""

    def probe() -> str:
        return ctx.backends.notifier(action.channel).check(to, _TIMEOUT_S)
    return [(f"{action.channel} {to}", None if _placeholder(to) else probe)]


def _script(action: Script, ctx: _Context) -> list[tuple[str, Probe]]:
    return [("program", _program(action.argv, ctx))]


def _wait(action: Wait, ctx: _Context) -> list[tuple[str, Probe]]:
    assert action.command is not None  # http/tcp: the service's health is what the run waits for
    return [("program", _program(action.command, ctx))]


def _placeholder(*values: str | None) -> bool:
    """A rendered value that still holds ``<STEP.KEY>``: known only once earlier steps ran."""
    return any(v is not None and _PLACEHOLDER.search(v) for v in values)


_CHECKERS: dict[type[Action], Checker] = {Launch: _launch, Restore: _restore, Dns: _dns, Fence: _fence,
                                          Notify: _notify, Script: _script, Wait: _wait}
