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

A recovery with ``restore:`` (a directory mirror) gets no disk snapshot: the VM
boots with user-data that installs drorch, reads the repository password from
the cloud's secret store, restores the mirror from its object-store target and
reports back (``drorch.engine.bootstrap``); the step waits for that report and
fails with the VM's own error if the restore failed. ``snapshot_id`` is then
the drorch snapshot the VM restored.

Idempotent: the launch is keyed by run and step, so a retry or a ``runbook
resume`` after a crash finds the VM the first attempt started instead of
starting a second one. A VM whose launch fails is removed by the provider.
"""

from __future__ import annotations

import dataclasses
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
        return recovery, self.spec_for(recovery, ctx.run_id, ctx.step)

    def spec_for(self, recovery: Recovery, run_id: str, step: str) -> LaunchSpec:
        """The VM to start for ``recovery`` in run ``run_id`` (the preflight checks it too)."""
        instance = recovery.instance
        tags = {**instance.tags, "drorch:run": run_id, "drorch:step": step,
                "drorch:recovery": recovery.name}
        return LaunchSpec(
            name=self.name or f"{recovery.name}-{run_id}",
            token=f"drorch-{run_id}-{step}",
            instance_type=instance.type, image=instance.image, subnet=instance.subnet,
            security_groups=instance.security_groups, key_name=instance.key_name, tags=tags,
            mirror=recovery.from_, snapshot=self.snapshot, snapshot_region=self.snapshot_region,
            device=self.device, profile=instance.profile)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        recovery, spec = self.spec(ctx)
        compute = ctx.backends.compute(recovery.provider, recovery.instance.region)
        if recovery.restore is not None:
            spec = self._boot_restore(ctx, recovery, spec, compute)
        ctx.log(f"launching {spec.instance_type} from {spec.image} in {compute.location}")
        machine = compute.launch(spec, ctx.deadline)
        if not machine.ip:
            raise StepFailed(f"instance {machine.id} has no IP address", permanent=True,
                             hint="give the recovery a subnet")
        ctx.log(f"{machine.id} {machine.state} at {machine.ip}")
        snapshot = machine.snapshot_id or ""
        if spec.user_data:
            snapshot = self._wait_report(ctx, compute, spec, machine.id)
        return {"instance_id": machine.id, "ip": machine.ip, "private_ip": machine.private_ip or "",
                "public_ip": machine.public_ip or "", "image_id": machine.image_id or "",
                "snapshot_id": snapshot}

    def _boot_restore(self, ctx: StepContext, recovery: Recovery, spec: LaunchSpec,
                      compute: Any) -> LaunchSpec:
        """A directory mirror: no disk snapshot; the VM restores from the object store at boot."""
        from drorch.engine.bootstrap import boot_script

        if not ctx.sandbox and not hasattr(compute, "wait_boot_report"):
            raise StepFailed(f"provider {recovery.provider} cannot restore a directory mirror at boot "
                             "(no boot reports)", permanent=True, hint="use provider aws")
        policy = ctx.require_policy(f"recovery '{recovery.name}'")
        region = recovery.instance.region or compute.location.split()[-1]
        script = boot_script(policy, recovery, spec.token, region)
        ctx.log(f"user-data: restore mirror {recovery.from_} at boot ({len(script)} bytes, no secret in it)")
        return dataclasses.replace(spec, snapshot="none", user_data=script)

    def _wait_report(self, ctx: StepContext, compute: Any, spec: LaunchSpec, instance: str) -> str:
        from drorch.engine.bootstrap import report_parameter

        if ctx.sandbox:  # drorch test and drills: emulators run no user-data; claim no data
            ctx.log(f"{instance}: sandboxed run, the boot report is not awaited; no data is claimed "
                    "restored (the drill's checks must prove it)")
            return ""
        report = compute.wait_boot_report(report_parameter(spec.token), ctx.deadline)
        if report.get("status") != "ok":
            raise StepFailed(f"instance {instance} could not restore mirror {spec.mirror}: "
                             f"{report.get('error', 'no reason given')}", permanent=True,
                             hint="fix the cause, terminate the instance, then run the step again")
        ctx.log(f"{instance}: restored snapshot {str(report.get('snapshot'))[:8]} onto {report.get('path')} "
                f"({report.get('files')} files)")
        return str(report.get("snapshot", ""))
