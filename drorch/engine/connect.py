"""Opening what a job starts from: a policy target's repository, and the snapshot a reference names.

``choose_snapshot`` is the one rule for "which snapshot": ``latest`` (the
newest; refused when the target holds several mirrors and none was named, so
it never silently picks another mirror's data) or a unique ID prefix, on the
named target or by default the mirror's first (of every mirror: the policy's
first). restore, export and the runbook's restore step all use it.

``unlock_ahead`` starts deriving the targets' keys while a command still imports.
"""

from __future__ import annotations

import threading

from drorch.policy import Policy
from drorch.ports.config import StoreConfig
from drorch.ports.errors import DrorchError, UsageError
from drorch.repository.repository import Repository
from drorch.repository.repository import unlock_ahead as unlock_repository_ahead
from drorch.repository.snapshot import Snapshot, find_snapshot, load_snapshots
from drorch.secrets import KeySource, StaticPassword
from drorch.storage import open_store


def open_repository(policy: Policy, target: str, keys: KeySource) -> Repository:
    store = open_store(policy.target(target).store_config())
    return Repository.open(store, keys.password(store), target)


def unlock_ahead(policy: Policy, keys: KeySource, *, mirror: str | None = None, target: str | None = None,
                 first_only: bool = False) -> None:
    """Start deriving the repository keys of the targets a command will open, and return at once.

    The targets are those of ``mirror`` (every mirror's when None), only the first
    with ``first_only``, or ``target`` alone. One thread opens their stores and reads
    their first key files, and scrypt runs on threads of its own; it releases the
    GIL, so the ~0.1 s per key overlaps the command's imports, and ``Repository.open``
    waits for the key instead of deriving it. Whatever fails here is left for the
    command's own open, which reports it.

    Only for a password from ``env:`` or ``file:`` (a KMS envelope would be fetched
    and decrypted twice) and a local target: a cloud SDK's client, made twice, costs
    more than the overlap saves (``snapshots`` on S3 at a moto server took 1.1-1.4 s
    with it, 0.9-1.0 s without).
    """
    if not isinstance(keys, StaticPassword):
        return
    try:
        names = [target] if target else target_names(policy, mirror)
        configs = [policy.target(name).store_config() for name in (names[:1] if first_only else names)]
    except DrorchError:
        return
    configs = [config for config in configs if config.scheme == "file"]
    if not configs:
        return
    threading.Thread(target=_unlock_each, args=(configs, keys), name="unlock-ahead", daemon=True).start()


def _unlock_each(configs: list[StoreConfig], keys: KeySource) -> None:
    for config in configs:
        try:
            store = open_store(config)
            unlock_repository_ahead(store, keys.password(store))
        except Exception:  # noqa: BLE001, S112 - the command's own open meets it again and reports it
            continue


def target_names(policy: Policy, mirror: str | None = None) -> list[str]:
    """Targets of one mirror, or of every mirror, in policy order without repeats."""
    mirrors = [policy.mirror(mirror)] if mirror else list(policy.mirrors)
    return list(dict.fromkeys(name for m in mirrors for name in m.targets))


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
