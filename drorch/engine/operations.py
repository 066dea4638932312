"""Reading operations on a policy's targets: list snapshots, restore, verify.

Thin orchestration over ``repository``; the CLI renders what these return.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from drorch.engine.connect import choose_snapshot, open_repository, target_names
from drorch.policy import Policy
from drorch.ports.errors import UsageError
from drorch.ports.progress import Progress
from drorch.repository.check import Checker, CheckReport
from drorch.repository.lock import RepositoryLock
from drorch.repository.snapshot import Snapshot, load_snapshots
from drorch.restore.image import ImageRestorer, ImageRestoreStats, image_node
from drorch.restore.restorer import Restorer, RestoreStats
from drorch.secrets import KeySource


@dataclass(frozen=True)
class TargetSnapshots:
    target: str
    snapshots: list[Snapshot]


def list_snapshots(policy: Policy, keys: KeySource, mirror: str | None = None
                   ) -> list[TargetSnapshots]:
    out = []
    for target in target_names(policy, mirror):
        snapshots = load_snapshots(open_repository(policy, target, keys))
        if mirror:
            snapshots = [s for s in snapshots if s.mirror == mirror]
        out.append(TargetSnapshots(target, snapshots))
    return out


def restore(policy: Policy, keys: KeySource, snapshot_ref: str, dest: Path, *,
            target: str | None = None, include: list[str] | None = None, mirror: str | None = None,
            progress: Progress | None = None) -> tuple[Snapshot, RestoreStats | ImageRestoreStats]:
    """Restore a snapshot's source directory into ``dest`` (its contents, not its full path).

    An image snapshot is written onto ``dest`` (a file, a block device, or a directory
    to put the image file in), comparing first so that only differing ranges are written.
    """
    repo, snapshot = choose_snapshot(policy, keys, snapshot_ref, mirror=mirror, target=target)
    repo.load_index()
    strip = _common_parts(snapshot.paths)
    with RepositoryLock(repo, exclusive=False).acquire():
        image = image_node(repo, snapshot)
        if image is not None:  # an image or volume: onto a file or device, writing only what differs
            if include:
                raise UsageError("--include selects files of a directory snapshot; this is a disk image")
            return snapshot, ImageRestorer(repo, progress).restore(image, dest)
        stats = Restorer(repo, progress).restore(snapshot.tree, dest, strip=strip,
                                                 include=include)
    return snapshot, stats


def _common_parts(paths: list[str]) -> tuple[str, ...]:
    """Path components shared by every snapshot path; restore places what is below them."""
    split = [Path(p).parts[1:] for p in paths]
    if not split:
        return ()
    common = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return tuple(common)


def verify(policy: Policy, keys: KeySource, *, read_data: bool = False, sample_pct: float = 100.0,
           progress: Progress | None = None) -> dict[str, CheckReport]:
    reports = {}
    for target in target_names(policy):
        repo = open_repository(policy, target, keys)
        with RepositoryLock(repo, exclusive=False).acquire():
            reports[target] = Checker(repo, progress).run(read_data, sample_pct)
    return reports
