"""``approve``: a human gate.

    approve: {message: "Switch DNS to the DR site?"}

The run stops here until someone says yes: ``--yes`` on the command line
passes every gate; otherwise the run waits (up to the step's ``timeout``,
default 1h) for ``drorch runbook approve RUN_ID``, which issues a one-time
token that this gate consumes. If the wait times out the step fails and the
usual undo follows; ``runbook resume RUN_ID`` can pick the run up again
after a crash or Ctrl-C.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from drorch.runbook.steps.base import Action, StepContext


class Approve(Action):
    KEY: ClassVar[str] = "approve"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("approved_by",)
    DEFAULT_TIMEOUT: ClassVar[timedelta] = timedelta(hours=1)

    message: str

    def summary(self) -> str:
        return repr(self.message)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        return {"approved_by": ctx.approvals.wait(ctx.step, self.message, ctx.deadline)}
