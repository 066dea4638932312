"""``launch``: bring a policy's ``recovery`` up as a running VM.

    launch: {recovery: web-vm}                  # latest data snapshot of the recovery's mirror
    launch: {recovery: web-vm, snapshot: none}  # the image alone (stateless service)
    launch: {recovery: web-vm, snapshot: snap-0abc, snapshot_region: eu-central-1}

The recovery (policy ``recovery:``) gives the provider, region, instance type,
image, subnet, security groups, key and tags; the step adds the data: the
newest provider snapshot of the recovery's mirror (on AWS, the newest
completed EBS snapshot tagged ``drorch:mirror=MIRROR``), copied into the DR
region first when ``snapshot_region`` names another region, and attached at
``device``. Outputs: ``instance_id``, ``ip`` (public if any, else private),
``private_ip``, ``public_ip``, ``image_id``, ``snapshot_id``.

Idempotent: the launch is keyed by run and step, so a retry or a ``runbook
resume`` after a crash finds the VM the first attempt started instead of
starting a second one. A VM whose launch fails is removed by the provider.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from drorch.policy.fields import Name
from drorch.ports.errors import StepFailed, UsageError
from drorch.ports.recovery import LaunchSpec
from drorch.runbook.steps.base import Action, StepContext

if TYPE_CHECKING:
    from drorch.policy import Policy, Recovery


def find_recovery(policy: Policy, name: str) -> Recovery:
    for recovery in policy.recovery:
        if recovery.name == name:
            return recovery
    known = ", ".join(r.name for r in policy.recovery) or "none"
    raise UsageError(f"no recovery named '{name}' in the policy", hint=f"known recoveries: {known}")


class Launch(Action):
    KEY: ClassVar[str] = "launch"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("instance_id", "ip", "private_ip", "public_ip", "image_id",
                                          "snapshot_id")
    DEFAULT_TIMEOUT: ClassVar[timedelta] = timedelta(minutes=15)

    recovery: Name
    snapshot: str = "latest"
    snapshot_region: str | None = None
    name: str | None = None
    device: str = "/dev/sdf"

    def summary(self) -> str:
        data = "no data snapshot" if self.snapshot == "none" else f"snapshot {self.snapshot}"
        copied = f" copied from {self.snapshot_region}" if self.snapshot_region else ""
        return f"recovery {self.recovery} ({data}{copied})"

    def spec(self, ctx: StepContext) -> tuple[Recovery, LaunchSpec]:
        recovery = find_recovery(ctx.require_policy(f"recovery '{self.recovery}'"), self.recovery)
        instance = recovery.instance
        tags = {**instance.tags, "drorch:run": ctx.run_id, "drorch:step": ctx.step,
                "drorch:recovery": recovery.name}
        return recovery, LaunchSpec(
            name=self.name or f"{recovery.name}-{ctx.run_id}",
            token=f"drorch-{ctx.run_id}-{ctx.step}",
            instance_type=instance.type, image=instance.image, subnet=instance.subnet,
            security_groups=instance.security_groups, key_name=instance.key_name, tags=tags,
            mirror=recovery.from_, snapshot=self.snapshot, snapshot_region=self.snapshot_region,
            device=self.device)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        recovery, spec = self.spec(ctx)
        compute = ctx.backends.compute(recovery.provider, recovery.instance.region)
        ctx.log(f"launching {spec.instance_type} from {spec.image} in {compute.location}")
        machine = compute.launch(spec, ctx.deadline)
        if not machine.ip:
            raise StepFailed(f"instance {machine.id} has no IP address", permanent=True,
                             hint="give the recovery a subnet")
        ctx.log(f"{machine.id} {machine.state} at {machine.ip}")
        return {"instance_id": machine.id, "ip": machine.ip, "private_ip": machine.private_ip or "",
                "public_ip": machine.public_ip or "", "image_id": machine.image_id or "",
                "snapshot_id": machine.snapshot_id or ""}
