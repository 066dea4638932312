"""The step actions of SPEC §5, one module each, keyed by their YAML action key."""

from __future__ import annotations

from drorch.runbook.steps.approve import Approve
from drorch.runbook.steps.base import Action, Approvals, StepContext, is_template
from drorch.runbook.steps.dns import Dns
from drorch.runbook.steps.fence import Fence
from drorch.runbook.steps.launch import Launch, find_recovery
from drorch.runbook.steps.notify import Notify
from drorch.runbook.steps.promote import Promote
from drorch.runbook.steps.restore import Restore
from drorch.runbook.steps.reverse import Reverse
from drorch.runbook.steps.script import Script
from drorch.runbook.steps.wait import Wait

__all__ = ["ACTIONS", "Action", "Approvals", "StepContext", "find_recovery", "is_template"]

ACTIONS: dict[str, type[Action]] = {
    cls.KEY: cls for cls in (Launch, Wait, Script, Restore, Dns, Approve, Notify, Fence, Reverse,
                             Promote)
}
"""Action key → parameter model, in the order SPEC §5 lists them."""
