"""Failback's data path (SPEC §8): the served side's live data, home, writing only what differs.

1. ``snapshot_served``: the standby's live path (what clients wrote to while
   it served) is archived into the mirror's targets as a snapshot of the
   mirror, through ``run_mirror`` like any apply: crash-safe, incremental
   (only what changed since the last snapshot is uploaded), retention as usual.
2. ``sync_onto``: a snapshot is applied onto a live directory (the primary
   source's path) with ``TreeSync``: unchanged files keep their inode,
   differing ones are replaced whole via temporary name and rename, and what
   the snapshot does not hold is removed. Writes the primary took after its
   last replicated snapshot were never part of what served and are removed
   with it: that is the data lost at failover (the RPO), not something
   failback can merge.

Run both on one machine when it sees both paths (one host, or hosts sharing
a filesystem); in fleet mode the second half runs on the primary's host
(a ``restore`` step with ``sync: true``).
"""

from __future__ import annotations

from pathlib import Path

from drorch.engine.apply import MirrorResult, apply_policy
from drorch.engine.connect import choose_snapshot
from drorch.engine.operations import common_parts
from drorch.engine.standby import standby_of
from drorch.policy import Consistency, Policy
from drorch.repository.lock import RepositoryLock
from drorch.repository.snapshot import Snapshot
from drorch.restore.sync import SyncStats, TreeSync
from drorch.secrets import KeySource, key_source
from drorch.state.tables import StateStore

__all__ = ["served_policy", "snapshot_served", "sync_onto"]

_LOCK_WAIT_S = 300.0  # the primary's own schedule may be applying the same mirror right now


def served_policy(policy: Policy, mirror: str) -> Policy:
    """``policy`` with the mirror's source read from its standby path (no consistency hooks:
    those belong to the primary's volumes, not the standby's directory)."""
    the_mirror, standby = standby_of(policy, mirror)
    sources = tuple(s.model_copy(update={"path": standby.path, "consistency": Consistency()})
                    if s.name == the_mirror.source else s for s in policy.sources)
    return policy.model_copy(update={"sources": sources})


def snapshot_served(policy: Policy, mirror: str, *, keys: KeySource | None = None,
                    state: StateStore | None = None) -> MirrorResult:
    """Archive the standby's live path as a new snapshot of ``mirror`` on every target."""
    result = apply_policy(served_policy(policy, mirror), mirror=mirror, keys=keys, state=state,
                          lock_wait_s=_LOCK_WAIT_S)
    [outcome] = result.mirrors
    return outcome


def sync_onto(policy: Policy, snapshot_ref: str, dest: Path, *, target: str,
              keys: KeySource | None = None, mirror: str | None = None) -> tuple[Snapshot, SyncStats]:
    """Make the live directory ``dest`` equal to a snapshot of ``target`` (module docstring)."""
    repo, snapshot = choose_snapshot(policy, keys or key_source(policy.encryption), snapshot_ref,
                                     mirror=mirror, target=target)
    repo.load_index()
    with RepositoryLock(repo, exclusive=False).acquire(_LOCK_WAIT_S):
        stats = TreeSync(repo).sync(snapshot.tree, dest, strip=common_parts(snapshot.paths))
    return snapshot, stats
