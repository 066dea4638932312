"""The plan: what ``apply`` would do, worked out without changing anything.

Like Terraform's plan, it is an immutable value: ``drorch plan`` renders it,
``drorch apply`` executes it. Building it reads each target (does a repository
exist, how many snapshots of the mirror it holds, how many retention would
forget after the next one) but never writes.

The plan is self-contained: it carries everything apply needs — the source to
read, each target's opened store and (when it exists) its repository, opened
once with the key derived once, and the key source for repositories still to
create — so apply never looks back into the policy or re-opens what the plan
opened. Those live objects stay out of ``to_json``.

With ``forecast=True`` (``drorch plan``) it also estimates what each target
will cost (``drorch.cost``): a bounded sample of each source is read, never
written. ``apply`` builds its plan without a forecast, so it reads nothing twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from drorch.anomaly.hold import hold_back
from drorch.cost.sample import DEFAULT_BUDGET, SourceEstimate, estimate_source
from drorch.policy import Mirror, Policy, Source
from drorch.policy.alerts import Alerts
from drorch.ports.errors import DrorchError, RepositoryNotFound
from drorch.ports.store import ObjectStore, immutability_problem
from drorch.repository.bootstrap import missing_config_problem
from drorch.repository.repository import Repository
from drorch.repository.retention import apply_retention
from drorch.repository.snapshot import MIRROR_TAG_PREFIX, Snapshot, load_snapshots
from drorch.repository.timefmt import now_ns
from drorch.secrets import KeySource
from drorch.sources.checks import source_problem
from drorch.sources.overlap import repository_overlap
from drorch.storage import open_store

if TYPE_CHECKING:
    from drorch.cost.forecast import RepoHistory, TargetForecast

SUPPORTED_SOURCE_TYPES = ("directory", "image", "volume")


class Mode(StrEnum):
    """How a mirror with several targets commits (see ``engine.apply``)."""

    SYNC = "sync"  # a snapshot counts only when every target has it
    ASYNC = "async"  # the primary commits; the others trail, lag checked against the RPO


def _live() -> Any:
    """A field holding a live object (store, repository, key source): not compared, not in JSON."""
    return field(default=None, repr=False, compare=False, metadata={"live": True})


def _public(value: Any) -> Any:
    """``asdict`` without the live fields (and without deep-copying them)."""
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _public(getattr(value, f.name)) for f in fields(value) if not f.metadata.get("live")}
    if isinstance(value, tuple | list):
        return [_public(v) for v in value]
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class TargetPlan:
    target: str
    location: str
    create_repository: bool
    snapshots: int | None  # snapshots of this mirror already there; None if unreadable
    forget: int | None  # snapshots retention would forget after the new one
    problem: str | None = None
    immutable_days: int | None = None
    forecast: TargetForecast | None = None  # what it will store and cost (plan --forecast)
    store: ObjectStore | None = _live()
    repository: Repository | None = _live()  # opened by the plan when it exists and keys were given


@dataclass(frozen=True)
class MirrorPlan:
    mirror: str
    mode: Mode
    source: str
    source_type: str
    source_path: str
    excludes: tuple[str, ...]
    retention: dict[str, int]
    rpo_s: float
    targets: tuple[TargetPlan, ...]
    problem: str | None = None
    estimate: SourceEstimate | None = None  # one full copy, from a sample of the source
    notes: tuple[str, ...] = ()  # what the operator should know, e.g. a repository excluded
    source_spec: Source | None = _live()  # the source to read, with its consistency hooks
    policy: str = ""  # metadata.name, for the run journal
    alerts: Alerts | None = _live()  # where an abnormal snapshot is reported (policy.alerts)
    # more snapshot tags: fleet jobs tag their snapshot with the job's ID, so a retry can see that
    # its killed predecessor already published and not publish a second one
    extra_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    policy: str
    mirrors: tuple[MirrorPlan, ...]
    keys: KeySource | None = _live()  # creates the password of repositories still to create

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
        return _public(self) | {"problems": self.problems}  # type: ignore[no-any-return]


def mirror_snapshots(snapshots: list[Snapshot], mirror: str) -> list[Snapshot]:
    return [s for s in snapshots if s.mirror == mirror]


@dataclass(frozen=True)
class _Options:
    keys: KeySource | None
    forecast: bool
    sample_bytes: int
    holds: Callable[[str], int | None]  # mirror -> time up to which retention must keep


def build_plan(policy: Policy, *, mirror: str | None = None, keys: KeySource | None = None,
               forecast: bool = False, sample_bytes: int = DEFAULT_BUDGET,
               holds: Callable[[str], int | None] | None = None) -> Plan:
    """The plan for every mirror (or the one named); ``keys`` lets it count snapshots.

    ``forecast`` adds cost forecasts (reading up to ``sample_bytes`` of each source);
    ``holds`` (mirror name to a time in ns) makes the forget counts honour anomaly holds.
    """
    mirrors = [policy.mirror(mirror)] if mirror else list(policy.mirrors)
    options = _Options(keys, forecast, sample_bytes, holds or (lambda _name: None))
    return Plan(policy.metadata.name, tuple(_plan_mirror(policy, m, options) for m in mirrors), keys)


def _plan_mirror(policy: Policy, mirror: Mirror, options: _Options) -> MirrorPlan:
    source = policy.source_of(mirror)
    retention = {k: v for k, v in mirror.retention.model_dump().items() if v}
    problem = None
    if source.type not in SUPPORTED_SOURCE_TYPES:
        problem = f"source type {source.type!r} is not supported by this version"
    else:
        problem = source_problem(source)
    overlap = repository_overlap(source, policy.targets_of(mirror))
    problem = problem or overlap.problem
    estimate = None
    if options.forecast and problem is None:
        with contextlib.suppress(OSError):  # unreadable now: no forecast, apply reports the cause
            estimate = estimate_source(source.path, (*source.exclude, *overlap.excludes),
                                       budget=options.sample_bytes)
    targets = []
    for target in policy.targets_of(mirror):
        step, history = _plan_target(policy, mirror, target.name, retention, options)
        if estimate is not None:
            from drorch.cost.forecast import forecast_target  # croniter: only `plan --forecast`

            step = replace(step, forecast=forecast_target(target, estimate, retention, history=history,
                                                          schedule=mirror.schedule))
        targets.append(step)
    return MirrorPlan(mirror.name, Mode(mirror.mode), source.name, source.type, str(source.path),
                      (*source.exclude, *overlap.excludes), retention, mirror.rpo.total_seconds(),
                      tuple(targets), problem, estimate, overlap.notes, source_spec=source,
                      policy=policy.metadata.name, alerts=policy.alerts)


def _plan_target(policy: Policy, mirror: Mirror, name: str, retention: dict[str, int],
                 options: _Options) -> tuple[TargetPlan, RepoHistory | None]:
    """The target's step, and its repository's history when a forecast was asked for."""
    target = policy.target(name)
    keys = options.keys
    days = target.immutable_days
    store: ObjectStore | None = None
    try:
        store = open_store(target.store_config())
        if days:
            problem = immutability_problem(store, days)
            if problem:
                return TargetPlan(name, store.location, False, None, None, problem, days, store=store), None
        if not store.exists("config"):
            problem = missing_config_problem(store, name)
            return TargetPlan(name, store.location, problem is None, 0, 0, problem, days, store=store), None
        if keys is None:
            return TargetPlan(name, store.location, False, None, None, None, days, store=store), None
        repo = Repository.open(store, keys.password(store), name)
        existing = mirror_snapshots(load_snapshots(repo), mirror.name)
        history = _history(store, existing) if options.forecast else None
    except RepositoryNotFound:
        return TargetPlan(name, target.url, True, 0, 0, None, days, store=store), None
    except DrorchError as err:
        return TargetPlan(name, target.url, False, None, None, str(err), days, store=store), None
    upcoming = Snapshot(now_ns(), "", [], tags=[MIRROR_TAG_PREFIX + mirror.name])
    forgotten, _held = hold_back(apply_retention([*existing, upcoming], retention).forget,
                                 options.holds(mirror.name))
    return TargetPlan(name, store.location, False, len(existing), len(forgotten), None, days,
                      store=store, repository=repo), history


def _history(store: ObjectStore, snapshots: list[Snapshot]) -> RepoHistory:
    """Bytes the repository holds (every object, as billed) and what each snapshot added."""
    from drorch.cost.forecast import RepoHistory

    stored = sum(info.size for info in store.list(""))
    added = tuple(sorted((s.time_ns, int((s.summary or {}).get("bytes_added", 0))) for s in snapshots))
    return RepoHistory(stored, added)
