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

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drorch.apply import Applier, ApplyResult
    from drorch.errors import DrorchError
    from drorch.operations import list_snapshots, restore, verify
    from drorch.plan import Plan, build_plan
    from drorch.policy import Policy, load_policy
    from drorch.secrets import KeySource, key_source
    from drorch.status import StatusReport, policy_status

# Where each public name lives. They are imported on first use (PEP 562), not here:
# `import drorch.cli.app` or `drorch --help` must not pay for the whole engine.
_HOME = {
    "Applier": "drorch.apply", "ApplyResult": "drorch.apply", "DrorchError": "drorch.errors",
    "list_snapshots": "drorch.operations", "restore": "drorch.operations",
    "verify": "drorch.operations", "Plan": "drorch.plan", "build_plan": "drorch.plan",
    "Policy": "drorch.policy", "load_policy": "drorch.policy", "KeySource": "drorch.secrets",
    "key_source": "drorch.secrets", "StatusReport": "drorch.status",
    "policy_status": "drorch.status",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'drorch' has no attribute {name!r}")
    value = getattr(import_module(_HOME[name]), name)
    globals()[name] = value
    return value


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
