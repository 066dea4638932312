"""drorch: a disaster-recovery orchestrator, as a Python API.

The CLI is a thin layer over these; everything it does can be done from Python::

    from drorch import Applier, build_plan, key_source, load_policy

    policy = load_policy("policies/quickstart.yaml")
    keys = key_source(policy.encryption)          # env:/file:/kms: resolved now
    plan = build_plan(policy, keys=keys)           # what would happen; changes nothing
    result = Applier(policy, keys).apply(plan)     # snapshot every mirror to every target
    assert result.exit_code == 0

Errors are ``drorch.errors.DrorchError`` subclasses: one sentence, a hint, an
exit code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drorch import lazy

if TYPE_CHECKING:
    from drorch.apply import Applier, ApplyResult
    from drorch.errors import DrorchError
    from drorch.operations import list_snapshots, restore, verify
    from drorch.plan import Plan, build_plan
    from drorch.policy import Policy, load_policy
    from drorch.secrets import KeySource, key_source
    from drorch.status import StatusReport, policy_status

# Imported on first use, not here: `drorch --help` must not pay for the engine (drorch.lazy).
__getattr__ = lazy.exports(__name__, {
    "drorch.apply": ("Applier", "ApplyResult"),
    "drorch.errors": ("DrorchError",),
    "drorch.operations": ("list_snapshots", "restore", "verify"),
    "drorch.plan": ("Plan", "build_plan"),
    "drorch.policy": ("Policy", "load_policy"),
    "drorch.secrets": ("KeySource", "key_source"),
    "drorch.status": ("StatusReport", "policy_status"),
})

__all__ = [
    "Applier",
    "ApplyResult",
    "DrorchError",
    "KeySource",
    "Plan",
    "Policy",
    "StatusReport",
    "build_plan",
    "key_source",
    "list_snapshots",
    "load_policy",
    "policy_status",
    "restore",
    "verify",
]
