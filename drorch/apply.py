"""Executing a plan: make every mirror current on every target.

Per target, in this order, under an exclusive repository lock:
1. adopt packs an interrupted run left unindexed (so they are not uploaded again);
2. archive the source against the mirror's latest snapshot (unchanged files are
   not re-read, known blobs not re-uploaded);
3. flush packs, write their index, and only then write the snapshot — an
   interrupted run leaves no snapshot, only reusable packs;
4. apply retention: forget, then prune what no snapshot needs.
If archiving fails after some packs were uploaded, they are still indexed so
the next run reuses them.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drorch.archiver.archiver import Archiver
from drorch.errors import EXIT_FAILED, EXIT_OBJECTIVES_MISSED, EXIT_OK, DrorchError, UsageError
from drorch.plan import MirrorPlan, Plan, TargetPlan, mirror_snapshots
from drorch.policy import Policy
from drorch.progress import NoProgress, Progress
from drorch.repository.lock import RepositoryLock
from drorch.repository.orphans import adopt_orphan_packs
from drorch.repository.prune import forget, prune
from drorch.repository.repository import Repository
from drorch.repository.retention import apply_retention
from drorch.repository.snapshot import MIRROR_TAG_PREFIX, Snapshot, load_snapshots, save_snapshot
from drorch.repository.timefmt import now_ns
from drorch.repository.uploader import PackUploader
from drorch.state import StateStore
from drorch.store import open_store


@dataclass
class TargetResult:
    target: str
    ok: bool
    snapshot: str | None = None
    error: str | None = None
    files_new: int = 0
    files_changed: int = 0
    files_unmodified: int = 0
    bytes_read: int = 0
    bytes_added: int = 0  # plaintext bytes of new blobs
    bytes_stored: int = 0  # what those took in the repository (compressed, encrypted)
    packs_adopted: int = 0
    skipped: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    packs_deleted: int = 0


@dataclass
class MirrorResult:
    mirror: str
    targets: list[TargetResult]
    error: str | None = None


@dataclass
class ApplyResult:
    policy: str
    mirrors: list[MirrorResult]

    @property
    def exit_code(self) -> int:
        outcomes = [t for m in self.mirrors for t in m.targets]
        if any(m.error for m in self.mirrors) or any(not t.ok for t in outcomes):
            return EXIT_FAILED
        if any(t.skipped for t in outcomes):
            return EXIT_OBJECTIVES_MISSED
        return EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"exit_code": self.exit_code}


class Applier:
    def __init__(self, policy: Policy, password: bytes, *, progress: Progress | None = None,
                 state: StateStore | None = None, lock_wait_s: float = 0.0) -> None:
        self.policy = policy
        self.password = password
        self.progress = progress or NoProgress()
        self.state = state
        self.lock_wait_s = lock_wait_s

    def apply(self, plan: Plan) -> ApplyResult:
        return ApplyResult(plan.policy, [self._apply_mirror(m) for m in plan.mirrors])

    def _apply_mirror(self, step: MirrorPlan) -> MirrorResult:
        if step.problem:
            return MirrorResult(step.mirror, [], error=step.problem)
        results = []
        for target_step in step.targets:
            results.append(self._record(step, target_step))
            if not results[-1].ok and step.mode == "sync":
                break  # sync: a failed target fails the mirror; do not pretend the rest count
        return MirrorResult(step.mirror, results)

    def _record(self, step: MirrorPlan, target_step: TargetPlan) -> TargetResult:
        run_id = self.state.start_run("apply", self.policy.metadata.name, step.mirror,
                                      target_step.target) if self.state else 0
        try:
            result = self._mirror_to_target(step, target_step)
        except DrorchError as err:
            result = TargetResult(target_step.target, ok=False, error=str(err))
        if self.state:
            status = "ok" if result.ok else "failed"
            self.state.finish_run(run_id, status, result.snapshot, asdict(result))
        return result

    def _open(self, target_step: TargetPlan) -> Repository:
        store = open_store(self.policy.target(target_step.target))
        if target_step.create_repository and not store.exists("config"):
            return Repository.init(store, self.password, target_step.target)
        return Repository.open(store, self.password, target_step.target)

    def _mirror_to_target(self, step: MirrorPlan, target_step: TargetPlan) -> TargetResult:
        if target_step.problem:
            raise UsageError(target_step.problem)
        repo = self._open(target_step)
        result = TargetResult(target_step.target, ok=False)
        with RepositoryLock(repo, exclusive=True).acquire(self.lock_wait_s):
            existing = load_snapshots(repo)
            repo.load_index()
            result.packs_adopted, _ = adopt_orphan_packs(repo)
            parent = _latest(mirror_snapshots(existing, step.mirror), step.source_path)
            snapshot = self._snapshot(repo, step, parent, result)
            result.snapshot = save_snapshot(repo, snapshot)
            result.ok = True
            self._retain(repo, step, mirror_snapshots([*existing, snapshot], step.mirror), result)
        return result

    def _snapshot(self, repo: Repository, step: MirrorPlan, parent: Snapshot | None,
                  result: TargetResult) -> Snapshot:
        uploader = PackUploader(repo)
        archiver = Archiver(repo, uploader, excludes=list(step.excludes), progress=self.progress)
        self.progress.start(f"{step.mirror} → {repo.name}")
        try:
            tree = archiver.archive(Path(step.source_path), parent.tree if parent else None)
            packs = uploader.flush()
        except BaseException:
            _index_what_was_uploaded(repo, uploader)
            raise
        finally:
            uploader.close()
            self.progress.finish()
        repo.save_index(packs)
        stats = archiver.stats
        result.files_new, result.files_changed = stats.files_new, stats.files_changed
        result.files_unmodified, result.bytes_read = stats.files_unmodified, stats.bytes_read
        result.bytes_added, result.bytes_stored = uploader.new_bytes, uploader.stored_bytes
        result.skipped = stats.skipped
        summary = {"files": stats.files_new + stats.files_changed + stats.files_unmodified,
                   "dirs": stats.dirs, "bytes": stats.bytes_total, "bytes_added": uploader.new_bytes,
                   "skipped": len(stats.skipped)}
        return Snapshot(now_ns(), tree, [step.source_path], parent=parent.id if parent else None,
                        tags=[MIRROR_TAG_PREFIX + step.mirror], excludes=list(step.excludes),
                        summary=summary)

    def _retain(self, repo: Repository, step: MirrorPlan, snapshots: list[Snapshot],
                result: TargetResult) -> None:
        decision = apply_retention(snapshots, step.retention)
        if not decision.forget:
            return
        result.forgotten = forget(repo, decision.forget)
        result.packs_deleted = prune(repo).packs_deleted


def _latest(snapshots: list[Snapshot], path: str) -> Snapshot | None:
    same_path = [s for s in snapshots if s.paths == [path]]
    return max(same_path, key=lambda s: s.time_ns) if same_path else None


def _index_what_was_uploaded(repo: Repository, uploader: PackUploader) -> None:
    """Best effort: index the packs that made it, so the next run does not upload them again."""
    if uploader.written:
        with contextlib.suppress(DrorchError):  # else the next run adopts them from their headers
            repo.save_index(dict(uploader.written))
