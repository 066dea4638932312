"""``fence``: make sure the old primary no longer serves (or remove a DR VM).

    fence: {instance: i-0abc, region: eu-central-1}          # stop an EC2 instance
    fence: {instance: web-primary, recovery: web-vm}         # by Name tag, provider of a recovery
    fence: {instance: "{{ outputs.vm.instance_id }}", recovery: web-vm, action: terminate}
    fence: {script: [ssh, primary, systemctl, stop, web],    # an on-prem primary
            start: [ssh, primary, systemctl, start, web]}    # ...and how to bring it back

Stopping before the DR copy takes writes prevents split brain. ``action:
terminate`` removes the machine instead, which is what an ``undo`` of a
``launch`` wants. Both are idempotent: fencing a stopped or removed machine
succeeds.

Built-in undo: a failed failover must leave the primary as it found it, so a
fence that stopped a *running* instance is undone by starting it again
(``action: start``), and a script fence by its ``start`` argv. A step's own
``undo:`` replaces the built-in one; a terminate, an instance that was not
running, and a script without ``start`` have nothing to undo. Outputs:
``instance_id``, ``state`` (after the fence), ``previous_state`` (before it).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import model_validator

from drorch.policy.fields import Argv, Name
from drorch.policy.validation import reject
from drorch.ports.errors import StepFailed
from drorch.ports.recovery import Compute, Machine
from drorch.process import base_environment, run_command
from drorch.runbook.steps.base import Action, StepContext
from drorch.runbook.steps.launch import find_recovery

if TYPE_CHECKING:
    from drorch.policy import Policy
    from drorch.ports.recovery import Backends

_SERVING = ("pending", "running")  # states whose fence the built-in undo reverses


class Fence(Action):
    KEY: ClassVar[str] = "fence"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("instance_id", "state", "previous_state")

    instance: str | None = None
    recovery: Name | None = None
    provider: str | None = None
    region: str | None = None
    # start: what the built-in undo runs (bring a fenced instance back); not for failover steps.
    action: Literal["stop", "terminate", "start"] = "stop"
    script: Argv | None = None
    start: Argv | None = None  # the script fence's undo: bring the primary back

    @model_validator(mode="after")
    def _exactly_one(self) -> Fence:
        if (self.instance is None) == (self.script is None):
            reject("fence needs exactly one of instance or script, e.g. {instance: i-0abc, "
                   'region: eu-west-1} or {script: [ssh, primary, systemctl, stop, web]}')
        if self.recovery is not None and self.provider is not None:
            reject("give recovery (to use its provider and region) or provider, not both")
        if self.start is not None and self.script is None:
            reject("start is the undo of a script fence; an instance fence is started again by itself")
        return self

    def summary(self) -> str:
        if self.script is not None:
            return "script " + shlex.join(self.script)
        return f"{self.action} {self.instance}"

    def builtin_undo(self, outputs: Mapping[str, Any]) -> Action | None:
        if self.script is not None:
            return Fence(script=self.start) if self.start is not None else None
        if self.action != "stop" or outputs.get("previous_state") not in _SERVING:
            return None
        return self.model_copy(update={"instance": str(outputs.get("instance_id") or self.instance),
                                       "action": "start"})

    def builtin_undo_summary(self) -> str | None:
        if self.script is not None:
            return f"script {shlex.join(self.start)} (built-in)" if self.start is not None else None
        if self.action != "stop":
            return None
        return f"start {self.instance} again if it was running (built-in)"

    def run(self, ctx: StepContext) -> dict[str, Any]:
        if self.script is not None:
            return self._run_script(ctx)
        compute = self.compute(ctx)
        assert self.instance is not None
        before = compute.find(self.instance)
        previous = before.state if before is not None else "absent"
        machine: Machine
        if self.action == "stop":
            machine = compute.stop(self.instance, ctx.deadline)
        elif self.action == "start":
            machine = compute.start(self.instance, ctx.deadline)
        else:
            machine = compute.terminate(self.instance, ctx.deadline)
        ctx.log(f"{machine.id}: {previous} -> {machine.state}")
        return {"instance_id": machine.id, "state": machine.state, "previous_state": previous}

    def compute(self, ctx: StepContext) -> Compute:
        if self.recovery is not None:
            ctx.require_policy(f"recovery '{self.recovery}'")
        return self.compute_for(ctx.policy, ctx.backends)

    def compute_for(self, policy: Policy | None, backends: Backends) -> Compute:
        """The compute adapter of the instance: the recovery's provider, or ``provider``."""
        provider, region = self.provider or "aws", self.region
        if self.recovery is not None:
            assert policy is not None
            recovery = find_recovery(policy, self.recovery)
            provider, region = recovery.provider, self.region or recovery.instance.region
        return backends.compute(provider, region)

    def _run_script(self, ctx: StepContext) -> dict[str, Any]:
        assert self.script is not None
        env = base_environment({"DRORCH_RUN_ID": ctx.run_id, "DRORCH_STEP": ctx.step})
        done = run_command(self.script, env=env, cwd=ctx.base_dir, deadline=ctx.deadline,
                           on_pid=ctx.on_pid, log=ctx.log)
        if done.exit_code != 0:
            raise StepFailed(f"{self.script[0]} exited with code {done.exit_code}", tail=done.tail())
        return {"instance_id": "", "state": "fenced", "previous_state": ""}
