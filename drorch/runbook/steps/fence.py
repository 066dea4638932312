"""``fence``: make sure the old primary no longer serves (or remove a DR VM).

    fence: {instance: i-0abc, region: eu-central-1}          # stop an EC2 instance
    fence: {instance: web-primary, recovery: web-vm}         # by Name tag, provider of a recovery
    fence: {instance: "{{ outputs.vm.instance_id }}", recovery: web-vm, action: terminate}
    fence: {script: [ssh, primary, systemctl, stop, web]}    # an on-prem primary

Stopping before the DR copy takes writes prevents split brain. ``action:
terminate`` removes the machine instead, which is what an ``undo`` of a
``launch`` wants. Both are idempotent: fencing a stopped or removed machine
succeeds.
"""

from __future__ import annotations

import shlex
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from drorch.policy.fields import Argv, Name
from drorch.policy.validation import reject
from drorch.ports.errors import StepFailed
from drorch.runbook.process import base_environment, run_command
from drorch.runbook.steps.base import Action, StepContext
from drorch.runbook.steps.launch import find_recovery


class Fence(Action):
    KEY: ClassVar[str] = "fence"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("instance_id", "state")

    instance: str | None = None
    recovery: Name | None = None
    provider: str | None = None
    region: str | None = None
    action: Literal["stop", "terminate"] = "stop"
    script: Argv | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Fence:
        if (self.instance is None) == (self.script is None):
            reject("fence needs exactly one of instance or script, e.g. {instance: i-0abc, "
                   'region: eu-west-1} or {script: [ssh, primary, systemctl, stop, web]}')
        if self.recovery is not None and self.provider is not None:
            reject("give recovery (to use its provider and region) or provider, not both")
        return self

    def summary(self) -> str:
        if self.script is not None:
            return "script " + shlex.join(self.script)
        return f"{self.action} {self.instance}"

    def run(self, ctx: StepContext) -> dict[str, Any]:
        if self.script is not None:
            env = base_environment({"DRORCH_RUN_ID": ctx.run_id, "DRORCH_STEP": ctx.step})
            done = run_command(self.script, env=env, cwd=ctx.base_dir, deadline=ctx.deadline,
                               on_pid=ctx.on_pid, log=ctx.log)
            if done.exit_code != 0:
                raise StepFailed(f"{self.script[0]} exited with code {done.exit_code}",
                                 tail=done.tail())
            return {"instance_id": "", "state": "fenced"}
        provider, region = self.provider or "aws", self.region
        if self.recovery is not None:
            recovery = find_recovery(ctx.require_policy(f"recovery '{self.recovery}'"), self.recovery)
            provider, region = recovery.provider, self.region or recovery.instance.region
        compute = ctx.backends.compute(provider, region)
        assert self.instance is not None
        if self.action == "stop":
            machine = compute.stop(self.instance, ctx.deadline)
        else:
            machine = compute.terminate(self.instance, ctx.deadline)
        ctx.log(f"{machine.id}: {machine.state}")
        return {"instance_id": machine.id, "state": machine.state}
