"""``restore``: put a mirror's latest (or a named) snapshot back on disk.

    restore: {mirror: web, to: /srv/www}
    restore: {mirror: web, snapshot: 3f9a2c1e, to: /srv/www, target: s3-dr, include: ["docs/**"]}

With ``sync: true`` the directory is made equal to the snapshot instead,
writing only the files that differ and removing what the snapshot does not
hold (``files``/``bytes`` then count what was written).

Reads from the mirror's first target unless ``target`` is given; relative
``to`` paths start at the runbook file's directory. Restoring again writes
the same files, so the step is idempotent. Under ``drorch test`` the files
go to a scratch directory, never to ``to``. Outputs: ``snapshot``, ``path``,
``files``, ``bytes``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from drorch.policy.fields import Name
from drorch.ports.errors import StepFailed
from drorch.runbook.steps.base import Action, StepContext, sandbox_keys, sandboxed


class Restore(Action):
    KEY: ClassVar[str] = "restore"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("snapshot", "path", "files", "bytes")
    DEFAULT_TIMEOUT: ClassVar[timedelta] = timedelta(hours=1)

    mirror: Name
    snapshot: str = "latest"
    to: str
    target: Name | None = None
    include: tuple[str, ...] = ()
    # False: write every file of the snapshot. True: make ``to`` equal to it, writing only
    # what differs and removing what it does not hold (failback onto the live primary).
    sync: bool = False

    def summary(self) -> str:
        return f"mirror {self.mirror} snapshot {self.snapshot} -> {self.to}"

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from drorch.engine.operations import list_snapshots, restore
        from drorch.secrets import key_source

        policy = ctx.require_policy(f"restoring mirror '{self.mirror}'")
        target_name = self.target or policy.mirror(self.mirror).targets[0]
        if ctx.sandbox and (ctx.sandbox / "repos" / target_name).exists():
            policy = sandboxed(policy, ctx.sandbox, {target_name})
            keys = sandbox_keys(ctx.sandbox)
        else:
            keys = key_source(policy.encryption)
        target = target_name
        listing = {t.target: t.snapshots for t in list_snapshots(policy, keys, self.mirror)}
        snapshots = sorted(listing.get(target, []), key=lambda s: s.time_ns)
        if self.snapshot == "latest":
            chosen = snapshots[-1] if snapshots else None
        else:
            chosen = next((s for s in snapshots if s.id.startswith(self.snapshot)), None)
        if chosen is None:
            raise StepFailed(f"target {target} has no snapshot {self.snapshot} of mirror {self.mirror}",
                             permanent=True, hint="list them with `drorch snapshots`")
        dest = ctx.sandbox / "restore" / ctx.step if ctx.sandbox else ctx.base_dir / Path(self.to)
        if self.sync:
            return self._sync(ctx, policy, keys, chosen.id, dest, target)
        _, stats = restore(policy, keys, chosen.id, dest, target=target,
                           include=list(self.include) or None)
        ctx.log(f"restored {chosen.id[:8]} into {dest}: {stats.files} files, {stats.bytes} bytes")
        return {"snapshot": chosen.id, "path": str(dest), "files": stats.files, "bytes": stats.bytes}

    def _sync(self, ctx: StepContext, policy: Any, keys: Any, snapshot: str, dest: Path,
              target: str) -> dict[str, Any]:
        from drorch.engine.failback import sync_onto

        if self.include:
            raise StepFailed("sync makes the whole directory equal to the snapshot; drop include",
                             permanent=True)
        _, stats = sync_onto(policy, snapshot, dest, target=target, keys=keys)
        ctx.log(f"synced {snapshot[:8]} onto {dest}: {stats.files_written} written, "
                f"{stats.removed} removed, {stats.files_unchanged} unchanged")
        return {"snapshot": snapshot, "path": str(dest), "files": stats.files_written,
                "bytes": stats.bytes_written}
