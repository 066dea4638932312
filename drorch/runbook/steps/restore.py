"""``restore``: put a mirror's latest (or a named) snapshot back on disk.

    restore: {mirror: web, to: /srv/www}
    restore: {mirror: web, snapshot: 3f9a2c1e, to: /srv/www, target: s3-dr, include: ["docs/**"]}

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
from drorch.runbook.steps.base import Action, StepContext, restore_context


class Restore(Action):
    KEY: ClassVar[str] = "restore"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("snapshot", "path", "files", "bytes")
    DEFAULT_TIMEOUT: ClassVar[timedelta] = timedelta(hours=1)

    mirror: Name
    snapshot: str = "latest"
    to: str
    target: Name | None = None
    include: tuple[str, ...] = ()

    def summary(self) -> str:
        return f"mirror {self.mirror} snapshot {self.snapshot} -> {self.to}"

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from drorch.engine.operations import restore
        from drorch.ports.errors import UsageError

        policy = ctx.require_policy(f"restoring mirror '{self.mirror}'")
        target_name = self.target or policy.mirror(self.mirror).targets[0]
        policy, keys = restore_context(policy, ctx.sandbox, target_name)
        dest = ctx.sandbox / "restore" / ctx.step if ctx.sandbox else ctx.base_dir / Path(self.to)
        try:
            chosen, stats = restore(policy, keys, self.snapshot, dest, target=target_name,
                                    mirror=self.mirror, include=list(self.include) or None)
        except UsageError as err:  # no such snapshot: retrying cannot make one
            raise StepFailed(str(err), permanent=True, hint=err.hint) from None
        ctx.log(f"restored {chosen.id[:8]} into {dest}: {stats.files} files, {stats.bytes} bytes")
        return {"snapshot": chosen.id, "path": str(dest), "files": stats.files, "bytes": stats.bytes}
