"""``reverse``: bring data written at the DR site home before failing back.

    reverse: {mirror: web-back}

``mirror`` names a mirror of the policy that runs in the opposite direction
(its source is the DR side's data, its targets are on-prem). The step makes
that mirror current now, exactly like ``drorch apply --mirror web-back``, and
succeeds only when every target committed the snapshot, so a failback runbook
flips DNS back only after the outage's writes are home. Applying is
crash-safe and incremental, so the step is idempotent. Under ``drorch test``
the mirror's targets are replaced by scratch repositories. Outputs:
``snapshot``, ``bytes_added``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from drorch.policy.fields import Name
from drorch.ports.errors import StepFailed
from drorch.runbook.steps.base import Action, StepContext, sandbox_keys, sandboxed


class Reverse(Action):
    KEY: ClassVar[str] = "reverse"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("snapshot", "bytes_added")
    DEFAULT_TIMEOUT: ClassVar[timedelta] = timedelta(hours=1)

    mirror: Name

    def summary(self) -> str:
        return f"apply mirror {self.mirror} now (DR -> on-prem)"

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from drorch.engine.apply import apply_policy
        from drorch.state.tables import StateStore

        policy = ctx.require_policy(f"reversing mirror '{self.mirror}'")
        policy.mirror(self.mirror)  # a clear error for an unknown name
        keys: Any = None  # the policy's own
        if ctx.sandbox:
            policy = sandboxed(policy, ctx.sandbox, set(policy.mirror(self.mirror).targets))
            keys = sandbox_keys(ctx.sandbox)
        result = apply_policy(policy, mirror=self.mirror, keys=keys, state=StateStore())
        [mirror] = result.mirrors
        failed = [t for t in mirror.targets if not t.ok]
        if mirror.error or failed or not mirror.targets:
            why = mirror.error or "; ".join(f"{t.target}: {t.error}" for t in failed) or "no targets"
            raise StepFailed(f"mirror {self.mirror} did not complete: {why}")
        snapshot = mirror.targets[0].snapshot or ""
        added = sum(t.bytes_added for t in mirror.targets)
        ctx.log(f"mirror {self.mirror}: snapshot {snapshot[:8]}, {added} new bytes")
        return {"snapshot": snapshot, "bytes_added": added}

