"""``reverse``: bring the data the DR side served home before failing back.

    reverse: {mirror: web}                 # web has a standby: snapshot it, restore onto the source
    reverse: {mirror: web, restore: false} # only the snapshot (restore on the primary's host later)
    reverse: {mirror: web-back}            # a mirror without standby: apply it (DR -> on-prem)

For a mirror with a ``standby`` (SPEC §8) the standby's live path — what
clients wrote to while it served — is archived into the mirror's targets as a
new snapshot of the mirror, then applied onto the primary source's path (or
``to``) writing only what differs: unchanged files keep their inode, changed
ones are replaced whole, what the served side deleted is removed. A file
written at the DR site during the outage is on the primary afterwards, so a
failback runbook moves DNS back only after this step.

For a mirror without a standby, ``mirror`` names one that runs in the
opposite direction (its source is the DR side's data, its targets on-prem);
the step makes it current like ``drorch apply --mirror web-back`` and
succeeds only when every target committed.

Applying is crash-safe and incremental and syncing an equal tree writes
nothing, so the step is idempotent. Under ``drorch test`` the targets are
scratch repositories and the restore goes to the scratch directory. Outputs:
``snapshot``, ``bytes_added``, ``path`` (where the data went, "" when not
restored), ``files_written``, ``files_removed``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from drorch.engine.apply import MirrorResult
from drorch.policy.fields import Name
from drorch.ports.errors import StepFailed
from drorch.runbook.steps.base import Action, StepContext, sandbox_keys, sandboxed


class Reverse(Action):
    KEY: ClassVar[str] = "reverse"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("snapshot", "bytes_added", "path", "files_written",
                                          "files_removed")
    DEFAULT_TIMEOUT: ClassVar[timedelta] = timedelta(hours=1)

    mirror: Name
    # True: the primary's source path gets the served data now. False when another
    # host does that half (a `restore` step with `sync: true` on the primary).
    restore: bool = True
    to: str | None = None

    def summary(self) -> str:
        return f"bring mirror {self.mirror}'s served data home (DR -> on-prem)"

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from drorch.engine.apply import apply_policy
        from drorch.engine.failback import snapshot_served, sync_onto
        from drorch.state.tables import StateStore

        policy = ctx.require_policy(f"reversing mirror '{self.mirror}'")
        mirror = policy.mirror(self.mirror)  # a clear error for an unknown name
        keys: Any = None  # the policy's own
        if ctx.sandbox:
            policy = sandboxed(policy, ctx.sandbox, set(mirror.targets))
            keys = sandbox_keys(ctx.sandbox)
        if mirror.standby is None:
            [outcome] = apply_policy(policy, mirror=self.mirror, keys=keys, state=StateStore()).mirrors
            return self._outputs(ctx, _committed(outcome), "", None)
        outcome = _committed(snapshot_served(policy, self.mirror, keys=keys, state=StateStore()))
        snapshot = outcome.targets[0].snapshot or ""
        if not self.restore:
            return self._outputs(ctx, outcome, "", None)
        dest = self._destination(ctx, policy.source_of(mirror).path)
        _, stats = sync_onto(policy, snapshot, dest, target=mirror.targets[0], keys=keys)
        ctx.log(f"{dest}: {stats.files_written} files written, {stats.removed} removed, "
                f"{stats.files_unchanged} unchanged")
        return self._outputs(ctx, outcome, str(dest), stats)

    def _destination(self, ctx: StepContext, source: Path) -> Path:
        if ctx.sandbox:
            return ctx.sandbox / "reverse" / ctx.step
        return ctx.base_dir / Path(self.to) if self.to else source

    def _outputs(self, ctx: StepContext, outcome: MirrorResult, path: str, stats: Any) -> dict[str, Any]:
        snapshot = outcome.targets[0].snapshot or ""
        added = sum(t.bytes_added for t in outcome.targets)
        ctx.log(f"mirror {self.mirror}: snapshot {snapshot[:8]}, {added} new bytes")
        return {"snapshot": snapshot, "bytes_added": added, "path": path,
                "files_written": stats.files_written if stats else 0,
                "files_removed": stats.removed if stats else 0}


def _committed(outcome: MirrorResult) -> MirrorResult:
    failed = [t for t in outcome.targets if not t.ok]
    if outcome.error or failed or not outcome.targets:
        why = outcome.error or "; ".join(f"{t.target}: {t.error}" for t in failed) or "no targets"
        raise StepFailed(f"mirror {outcome.mirror} did not complete: {why}")
    return outcome
