"""Opening what a job starts from: a policy target's repository, and the snapshot a reference names.

``choose_snapshot`` is the one rule for "which snapshot": ``latest`` (the
newest; refused when the target holds several mirrors and none was named, so
it never silently picks another mirror's data) or a unique ID prefix, on the
named target or by default the mirror's first (of every mirror: the policy's
first). restore, export and the runbook's restore step all use it.

``drorch.engine.unlock`` starts deriving the targets' keys while a command still starts.
"""

from __future__ import annotations

from drorch.engine.unlock import target_names
from drorch.policy import Policy
from drorch.ports.errors import UsageError
from drorch.repository.repository import Repository
from drorch.repository.snapshot import Snapshot, find_snapshot, load_snapshots
from drorch.secrets import KeySource
from drorch.storage import open_store


def open_repository(policy: Policy, target: str, keys: KeySource) -> Repository:
    store = open_store(policy.target(target).store_config())
    return Repository.open(store, keys.password(store), target)


def choose_snapshot(policy: Policy, keys: KeySource, ref: str, *, mirror: str | None = None,
                    target: str | None = None) -> tuple[Repository, Snapshot]:
    """The repository and the snapshot ``ref`` names; ``UsageError`` naming both when there is none."""
    target = target or target_names(policy, mirror)[0]
    repo = open_repository(policy, target, keys)
    snapshot = find_snapshot(_candidates(load_snapshots(repo), ref, target, mirror), ref)
    if snapshot is None:
        of_mirror = f" of mirror {mirror!r}" if mirror else ""
        raise UsageError(f"target {target!r} has no snapshot {ref!r}{of_mirror}",
                         hint="list them with `drorch snapshots`; use `latest` or an ID prefix "
                              "(run `drorch apply` first if there is none)")
    return repo, snapshot


def _candidates(snapshots: list[Snapshot], ref: str, target: str, mirror: str | None) -> list[Snapshot]:
    """The snapshots ``ref`` may name: ``latest`` must not silently pick another mirror's data."""
    if mirror:
        return [s for s in snapshots if s.mirror == mirror]
    mirrors = sorted({s.mirror or "(not drorch)" for s in snapshots})
    if ref == "latest" and len(mirrors) > 1:
        raise UsageError(f"target {target!r} holds snapshots of several mirrors ({', '.join(mirrors)}), "
                         "so `latest` is ambiguous", hint="add --mirror NAME, or give a snapshot ID")
    return snapshots
