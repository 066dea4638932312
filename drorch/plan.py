"""The plan: what ``apply`` would do, worked out without changing anything.

Like Terraform's plan, it is an immutable value: ``drorch plan`` renders it,
``drorch apply`` executes it. Building it reads each target (does a repository
exist, how many snapshots of the mirror it holds, how many retention would
forget after the next one) but never writes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from drorch.errors import DrorchError, RepositoryNotFound
from drorch.policy import Mirror, Policy
from drorch.repository.repository import Repository
from drorch.repository.retention import apply_retention
from drorch.repository.snapshot import MIRROR_TAG_PREFIX, Snapshot, load_snapshots
from drorch.repository.timefmt import now_ns
from drorch.secrets import KeySource
from drorch.sources.checks import source_problem
from drorch.sources.overlap import repository_overlap
from drorch.store import immutability_problem, open_store

SUPPORTED_SOURCE_TYPES = ("directory", "image", "volume")


@dataclass(frozen=True)
class TargetPlan:
    target: str
    location: str
    create_repository: bool
    snapshots: int | None  # snapshots of this mirror already there; None if unreadable
    forget: int | None  # snapshots retention would forget after the new one
    problem: str | None = None


@dataclass(frozen=True)
class MirrorPlan:
    mirror: str
    mode: str
    source: str
    source_type: str
    source_path: str
    excludes: tuple[str, ...]
    retention: dict[str, int]
    rpo_s: float
    targets: tuple[TargetPlan, ...]
    problem: str | None = None
    notes: tuple[str, ...] = ()  # what the operator should know, e.g. a repository excluded


@dataclass(frozen=True)
class Plan:
    policy: str
    mirrors: tuple[MirrorPlan, ...]

    @property
    def problems(self) -> list[str]:
        found = [f"mirror {m.mirror!r}: {m.problem}" for m in self.mirrors if m.problem]
        found += [f"mirror {m.mirror!r} target {t.target!r}: {t.problem}"
                  for m in self.mirrors for t in m.targets if t.problem]
        return found

    @property
    def repositories_to_create(self) -> int:
        return sum(t.create_repository for m in self.mirrors for t in m.targets)

    @property
    def snapshots_to_forget(self) -> int:
        return sum(t.forget or 0 for m in self.mirrors for t in m.targets)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"problems": self.problems}


def mirror_snapshots(snapshots: list[Snapshot], mirror: str) -> list[Snapshot]:
    return [s for s in snapshots if s.mirror == mirror]


def build_plan(policy: Policy, *, mirror: str | None = None,
               keys: KeySource | None = None) -> Plan:
    """The plan for every mirror (or the one named); ``keys`` lets it count snapshots."""
    mirrors = [policy.mirror(mirror)] if mirror else list(policy.mirrors)
    return Plan(policy.metadata.name, tuple(_plan_mirror(policy, m, keys) for m in mirrors))


def _plan_mirror(policy: Policy, mirror: Mirror, keys: KeySource | None) -> MirrorPlan:
    source = policy.source_of(mirror)
    retention = {k: v for k, v in mirror.retention.model_dump().items() if v}
    problem = None
    if source.type not in SUPPORTED_SOURCE_TYPES:
        problem = f"source type {source.type!r} is not supported by this version"
    else:
        problem = source_problem(source)
    overlap = repository_overlap(source, policy.targets_of(mirror))
    problem = problem or overlap.problem
    targets = tuple(_plan_target(policy, mirror, t.name, retention, keys)
                    for t in policy.targets_of(mirror))
    return MirrorPlan(mirror.name, mirror.mode, source.name, source.type, str(source.path),
                      (*source.exclude, *overlap.excludes), retention, mirror.rpo.total_seconds(),
                      targets, problem, overlap.notes)


def _plan_target(policy: Policy, mirror: Mirror, name: str, retention: dict[str, int],
                 keys: KeySource | None) -> TargetPlan:
    target = policy.target(name)
    try:
        store = open_store(target)
        if target.immutable_days:
            problem = immutability_problem(store, target.immutable_days)
            if problem:
                return TargetPlan(name, store.location, False, None, None, problem=problem)
        if not store.exists("config"):
            return TargetPlan(name, store.location, True, 0, 0)
        if keys is None:
            return TargetPlan(name, store.location, False, None, None)
        repo = Repository.open(store, keys.password(store), name)
        existing = mirror_snapshots(load_snapshots(repo), mirror.name)
    except RepositoryNotFound:
        return TargetPlan(name, target.url, True, 0, 0)
    except DrorchError as err:
        return TargetPlan(name, target.url, False, None, None, problem=str(err))
    upcoming = Snapshot(now_ns(), "", [], tags=[MIRROR_TAG_PREFIX + mirror.name])
    forget = len(apply_retention([*existing, upcoming], retention).forget)
    return TargetPlan(name, store.location, False, len(existing), forget)
