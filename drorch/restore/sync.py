"""Making a live directory equal to a snapshot, touching only what differs.

This is how a standby follows its mirror and how failback brings the served
side's data home (SPEC §8). Unlike ``Restorer.restore``, which writes every
file, ``TreeSync.sync`` compares first:

- a file whose type, size and modification time (to the nanosecond) equal the
  snapshot's is left alone: same inode, same content, not read (the quick
  check rsync makes; drorch restores mtimes, so a copy it wrote always passes).
  Only its permissions and owner are corrected in place if they drifted;
- a file that differs is written whole under a temporary name in the same
  directory (``.drorch-sync.NAME.TOKEN``), given its metadata, then renamed
  over the old one, so a reader of the live directory sees the old file or
  the new one, never a half-written mix;
- what the snapshot no longer holds is removed, including the temporary
  files of an earlier, interrupted sync;
- directory metadata is set last, deepest first.

Blobs are read through the restorer (one ranged read per pack, every blob
authenticated and hash-checked), so this module holds no second reader.
A sync interrupted at any point leaves each file either old or new; running
it again finishes the job.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from drorch.ports.errors import IntegrityError
from drorch.ports.progress import Progress
from drorch.repository.repository import Repository
from drorch.repository.tree import mtime_ns, posix_permissions
from drorch.restore.fs import apply_metadata_at
from drorch.restore.restorer import Node, Restorer

__all__ = ["SyncStats", "TreeSync", "TEMP_PREFIX"]

TEMP_PREFIX = ".drorch-sync."


@dataclass
class SyncStats:
    files_written: int = 0
    files_unchanged: int = 0
    symlinks_written: int = 0
    removed: int = 0  # files, links and directory trees the snapshot no longer holds
    dirs: int = 0
    metadata_fixed: int = 0  # unchanged content whose mode or owner was corrected
    bytes_written: int = 0


@dataclass
class _Staged:
    """One entry to put in place: written under ``temp``, renamed to ``path``."""

    temp: Path
    path: Path
    node: Node


@dataclass
class _Work:
    files: list[tuple[str, Node]] = field(default_factory=list)  # (temp path below dest, node)
    staged: list[_Staged] = field(default_factory=list)
    extras: list[Path] = field(default_factory=list)
    dirs: list[tuple[Path, Node]] = field(default_factory=list)  # children before parents


class TreeSync:
    """Applies snapshot trees of ``repo`` onto directories (module docstring)."""

    def __init__(self, repo: Repository, progress: Progress | None = None,
                 workers: int | None = None) -> None:
        self.restorer = Restorer(repo, progress, workers)
        self.as_root = os.geteuid() == 0
        self.dest = Path()

    def sync(self, tree_id: str, dest: Path, *, strip: tuple[str, ...] = ()) -> SyncStats:
        """Make ``dest`` hold exactly the tree below ``strip`` of ``tree_id``; returns what changed."""
        tree_id = self.restorer.descend(tree_id, strip)
        dest.mkdir(parents=True, exist_ok=True)
        stats, work = SyncStats(), _Work()
        self.dest = dest
        self._walk(tree_id, dest, work, stats)
        stats.bytes_written = self.restorer.write_files(dest, work.files, f"syncing {dest}")
        for item in work.staged:
            self._put_in_place(item)
        for path in work.extras:
            _remove(path)
        for path, node in work.dirs:
            apply_metadata_at(path, node, self.as_root)
        stats.removed = len(work.extras)
        return stats

    # ------------------------------------------------------------------------------ walk

    def _walk(self, tree_id: str, into: Path, work: _Work, stats: SyncStats) -> None:
        present = _entries(into)
        for node in self.restorer.tree(tree_id):
            name = node["name"]
            if "/" in name or name in ("", ".", ".."):
                raise IntegrityError(f"refusing to sync an entry named {name!r}")
            path, have = into / name, present.pop(name, None)
            if node["type"] == "dir":
                if have is None or not stat.S_ISDIR(have.st_mode):
                    if have is not None:
                        _remove(path)
                    os.mkdir(path)
                self._walk(node["subtree"], path, work, stats)
                work.dirs.append((path, node))
                stats.dirs += 1
            elif node["type"] == "file":
                self._file(node, path, have, work, stats)
            elif node["type"] == "symlink":
                self._symlink(node, path, have, work, stats)
            # fifos and devices are recorded but not recreated; an entry of that name stays
        work.extras += [into / name for name in present]

    def _file(self, node: Node, path: Path, have: os.stat_result | None, work: _Work,
              stats: SyncStats) -> None:
        if (have is not None and stat.S_ISREG(have.st_mode) and have.st_size == node.get("size", 0)
                and have.st_mtime_ns == mtime_ns(node)):
            stats.files_unchanged += 1
            stats.metadata_fixed += self._fix_metadata(path, node, have)
            return
        temp = _temp_name(path)
        work.files.append((str(temp.relative_to(self.dest)), node))
        work.staged.append(_Staged(temp, path, node))
        stats.files_written += 1

    def _symlink(self, node: Node, path: Path, have: os.stat_result | None, work: _Work,
                 stats: SyncStats) -> None:
        target = node.get("linktarget", "")
        if have is not None and stat.S_ISLNK(have.st_mode) and os.readlink(path) == target:
            return
        temp = _temp_name(path)
        os.symlink(target, temp)
        work.staged.append(_Staged(temp, path, node))
        stats.symlinks_written += 1

    def _fix_metadata(self, path: Path, node: Node, have: os.stat_result) -> int:
        """Correct mode and owner of an unchanged file in place (no new inode, times kept)."""
        fixed = 0
        mode = posix_permissions(node.get("mode", 0o644))
        if stat.S_IMODE(have.st_mode) != mode:
            os.chmod(path, mode)
            fixed = 1
        if self.as_root and (have.st_uid, have.st_gid) != (node.get("uid", 0), node.get("gid", 0)):
            with contextlib.suppress(OSError):
                os.chown(path, node.get("uid", 0), node.get("gid", 0), follow_symlinks=False)
                fixed = 1
        return fixed

    def _put_in_place(self, item: _Staged) -> None:
        apply_metadata_at(item.temp, item.node, self.as_root)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISDIR(os.lstat(item.path).st_mode):
                shutil.rmtree(item.path)  # a directory where the snapshot has a file
        os.replace(item.temp, item.path)


def _entries(directory: Path) -> dict[str, os.stat_result]:
    with os.scandir(directory) as it:
        return {entry.name: entry.stat(follow_symlinks=False) for entry in it}


def _temp_name(path: Path) -> Path:
    return path.with_name(f"{TEMP_PREFIX}{path.name[:64]}.{secrets.token_hex(4)}")


def _remove(path: Path) -> None:
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
