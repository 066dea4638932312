"""``promote``: make a mirror's standby copy the live data (run on the standby's host).

    promote: {mirror: web}                 # final catch-up, then stop following
    promote: {mirror: web, rejoin: true}   # after failback (or as promote's undo): follow again

Promote marks the copy promoted first, so the follower (``drorch standby``)
stops applying snapshots, waits for a sync in flight, then catches the copy up
to the newest snapshot at the mirror's first target: what the primary
replicated before it was lost is all there. From then on the copy is never
overwritten by a snapshot until it is rejoined. Running it again after it
finished changes nothing (the copy may already be serving writes), so the
step is idempotent. Outputs: ``snapshot`` (what the copy holds), ``path``,
``files_written``, ``data_lag_s``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from drorch.policy.fields import Name
from drorch.ports.errors import StepFailed
from drorch.runbook.steps.base import Action, StepContext


class Promote(Action):
    KEY: ClassVar[str] = "promote"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("snapshot", "path", "files_written", "data_lag_s")
    DEFAULT_TIMEOUT: ClassVar[timedelta] = timedelta(minutes=30)

    mirror: Name
    rejoin: bool = False

    def summary(self) -> str:
        if self.rejoin:
            return f"standby of mirror {self.mirror}: follow again"
        return f"standby of mirror {self.mirror}: final catch-up, stop following"

    def run(self, ctx: StepContext) -> dict[str, Any]:
        from drorch.engine.standby import Follower

        policy = ctx.require_policy(f"promoting the standby of mirror '{self.mirror}'")
        follower = Follower(policy, self.mirror, log=ctx.log)
        if ctx.sandbox:  # drorch test: never pause a real follower or touch the live copy
            ctx.log(f"sandbox: would {'rejoin' if self.rejoin else 'promote'} {follower.path}")
            return {"snapshot": "", "path": str(follower.path), "files_written": 0, "data_lag_s": 0}
        if self.rejoin:
            follower.rejoin()
            applied = follower.catch_up()
        else:
            applied = follower.promote()
        if applied is None:
            raise StepFailed(f"target {follower.target} holds no snapshot of mirror {self.mirror}",
                             permanent=True, hint="the standby has nothing to serve; restore from "
                             "another target or check the mirror")
        written = applied.stats.files_written if applied.stats else 0
        ctx.log(f"{follower.path} holds {applied.snapshot[:8]} ({written} files written)")
        return {"snapshot": applied.snapshot, "path": str(follower.path), "files_written": written,
                "data_lag_s": round(applied.data_lag_s, 3)}
