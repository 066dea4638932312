"""drorch: a disaster-recovery orchestrator, as a Python API.

The CLI is a thin layer over these; everything it does can be done from Python::

    from drorch import Applier, build_plan, key_source, load_policy

    policy = load_policy("policies/quickstart.yaml")
    keys = key_source(policy.encryption)          # env:/file:/kms: resolved now
    plan = build_plan(policy, keys=keys)           # what would happen; changes nothing
    result = Applier(policy, keys).apply(plan)     # snapshot every mirror to every target
    assert result.exit_code == 0

Runs are recorded in the state database (``$DRORCH_HOME/state.db``) exactly as
the CLI records them. Errors are ``drorch.ports.errors.DrorchError``
subclasses: one sentence, a hint, an exit code. The engine functions behind
these (``drorch.engine``) are what the CLI, the scheduler and runbooks call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drorch import lazy

if TYPE_CHECKING:
    from drorch.engine.apply import Applier, ApplyResult
    from drorch.engine.operations import list_snapshots, restore, verify
    from drorch.engine.plan import Plan, build_plan
    from drorch.engine.status import StatusReport, policy_status
    from drorch.policy import Policy, load_policy
    from drorch.ports.errors import DrorchError
    from drorch.secrets import KeySource, key_source

# Imported on first use, not here: `drorch --help` must not pay for the engine (drorch.lazy).
__getattr__ = lazy.exports(__name__, {
    "drorch.engine.apply": ("Applier", "ApplyResult"),
    "drorch.ports.errors": ("DrorchError",),
    "drorch.engine.operations": ("list_snapshots", "restore", "verify"),
    "drorch.engine.plan": ("Plan", "build_plan"),
    "drorch.policy": ("Policy", "load_policy"),
    "drorch.secrets": ("KeySource", "key_source"),
    "drorch.engine.status": ("StatusReport", "policy_status"),
}, subpackages=("restore",))

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
