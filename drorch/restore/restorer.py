"""Restoring a snapshot's tree to a directory, pack by pack.

First the trees are walked: directories, symlinks, fifos and device nodes are
made, every file is planned, files of several blobs (and hard links) are created
at their final size, and files that shared an inode in the snapshot become hard
links again (restic's rule: same ``inode`` and ``device_id``, ``links`` > 1). Then
each needed pack is read once (one ranged read covering the blobs we need) on a
worker pool and every blob is written at its offset in every file that uses it;
on a large restore, helper processes check and write the blobs
(``drorch.restore.packs``). A file of one blob is made, written and given its
metadata by that blob's writer, in one open (``fs.write_whole``). Everything
else's metadata (owner when root, mode, extended attributes, times) is set last,
directories deepest first, so writing children does not disturb a directory's
restored mtime.
Every path is resolved inside ``--to`` without following links (see
``drorch.restore.fs``).

Damage does not stop a restore: every blob is authenticated and hash-checked
before it is written, and a file with a blob that is damaged or missing is
renamed ``NAME.drorch-damaged`` (its intact parts kept, holes where the damage
is), so no file that looks complete is not. An unreadable directory, or a tree
listing a name twice (which could make two entries fight over one path), is not
restored. ``RestoreStats.damaged`` names each one, with its blobs; the CLI exits 3.

A restore that fails midway (a full disk, an unreadable store) removes every
file it had not finished and says how many were kept.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from drorch.ports.errors import (
    DrorchError,
    IntegrityError,
    SourceError,
    StoreFull,
    UsageError,
)
from drorch.ports.progress import NoProgress, Progress
from drorch.repository.pack import DATA, TREE
from drorch.repository.repository import Repository
from drorch.repository.tree import decode_tree
from drorch.restore import fs as restore_fs
from drorch.restore.damage import DAMAGED_SUFFIX, Damage, Plan, PlannedFile
from drorch.restore.fs import DirFds
from drorch.restore.packs import PackWriter

Node = dict[str, Any]
FILES_PER_TASK = 256
_KINDS = ("file", "dir", "symlink", "fifo", "dev", "chardev", "socket")  # restic's node types
# restore.fs.apply_metadata's fields (name: for messages)
_METADATA_KEYS = ("name", "type", "mode", "uid", "gid", "mtime", "atime", "extended_attributes")


@dataclass
class RestoreStats:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    special: int = 0  # fifos and device nodes
    hardlinks: int = 0  # files restored as another link to a file restored before
    bytes: int = 0
    damaged: list[dict[str, Any]] = field(default_factory=list)  # Damage.to_json of each
    warnings: list[str] = field(default_factory=list)  # metadata that could not be set
    blobs_by_helpers: int = 0  # data blobs written by helper processes


@dataclass
class _Frame:
    """One directory of the walk: its remaining nodes and whether anything below was included."""

    nodes: Iterator[Node]
    dir: int
    rel: str
    included: bool
    node: Node | None = None  # None for the restore's root
    name: str = ""
    parent: int = 0
    anything: bool = False


class Restorer:
    def __init__(self, repo: Repository, progress: Progress | None = None,
                 workers: int | None = None, *, helpers: int | None = None,
                 helpers_after: int | None = None) -> None:
        """``helpers`` processes (default one per core; 0 for none) write the packs of many
        small blobs, once a restore has ``helpers_after`` blobs in such packs (default 1,000;
        see ``drorch.restore.packs``)."""
        self.repo = repo
        self.progress = progress or NoProgress()
        self.workers = workers or max(2, (os.cpu_count() or 2))
        self.helpers = (os.cpu_count() or 1) if helpers is None else helpers
        self.helpers_after = helpers_after
        self.stats = RestoreStats()

    def restore(self, tree_id: str, dest: Path, *, strip: tuple[str, ...] = (),
                include: list[str] | None = None) -> RestoreStats:
        """Restore the tree below path ``strip`` into ``dest``; ``include`` globs filter files."""
        root_nodes = self._tree(self._descend(tree_id, strip))
        root_fd = _open_target(dest)
        plan = Plan()
        packs = self._pack_writer(root_fd, plan)
        try:
            try:
                if not include:  # most of the repository's packs are likely wanted
                    packs.start_helpers(ahead=True)
                self._walk(root_nodes, root_fd, include or [], plan)
                self.progress.start(f"restoring into {dest}", plan.total_bytes())
                self._write(root_fd, plan, packs)
            except BaseException as err:  # Ctrl-C included: no unfinished file may stay behind
                _remove_incomplete(root_fd, plan)
                if isinstance(err, OSError | DrorchError):
                    raise _failure(err, dest, plan) from None
                raise
            self._set_aside_damaged(root_fd, plan)
            self._apply_metadata(root_fd, plan)
        finally:
            packs.close()  # helpers started ahead, if the walk failed
            os.close(root_fd)
        self.progress.finish()
        self.stats.bytes = plan.total_bytes()
        self.stats.damaged = [d.to_json() for d in plan.damage]
        return self.stats

    def _descend(self, root: str, strip: tuple[str, ...]) -> str:
        """The tree of the snapshot's source directory, ``strip`` being its absolute path.

        drorch and restic record an absolute source from ``/`` down; restic records a
        relative one (``restic backup data``) from its first relative component. So
        the path is tried whole, then without its leading components, the shortest
        suffix last, as restic's restore finds it.
        """
        for skip in range(len(strip) + 1):
            found = self._find_dir(root, strip[skip:])
            if found is not None:
                return found
        raise IntegrityError(f"the snapshot has no directory {strip[0]!r} on its path")

    def _find_dir(self, tree_id: str, parts: tuple[str, ...]) -> str | None:
        for part in parts:
            node = next((n for n in self._tree(tree_id) if n.get("name") == part), None)
            if node is None or node.get("type") != "dir" or not isinstance(node.get("subtree"), str):
                return None
            tree_id = node["subtree"]
        return tree_id

    def _tree(self, tree_id: str) -> list[Node]:
        """A tree's nodes; an authentic blob that is not a tree is damage too (IntegrityError)."""
        blob = self.repo.load_blob(TREE, tree_id)
        try:
            nodes = decode_tree(blob, strict=False)  # each node is judged in _nodes
        except (ValueError, TypeError, AttributeError) as err:
            raise IntegrityError(f"tree {tree_id[:12]} does not decode: {err}") from None
        if not all(isinstance(n, dict) for n in nodes):
            raise IntegrityError(f"tree {tree_id[:12]} holds entries that are not nodes")
        return nodes

    # -- for callers that place files themselves (the standby's sync) -----------------------

    def descend(self, tree_id: str, strip: tuple[str, ...]) -> str:
        """The subtree at the snapshot's source path ``strip`` (see ``_descend``)."""
        return self._descend(tree_id, strip)

    def tree(self, tree_id: str) -> list[Node]:
        """A tree's nodes, authenticated and hash-checked (IntegrityError when damaged)."""
        return self._tree(tree_id)

    def write_files(self, dest: Path, files: list[tuple[str, Node]], what: str) -> int:
        """Write the content of each ``(path relative to dest, file node)``; returns the bytes.

        The same pack reader as ``restore`` (each pack read once, every blob checked);
        the directories must exist and are entered without following links. Damage is
        an ``IntegrityError`` naming it, raised after writing: the caller, which wrote
        under temporary names, puts nothing damaged in place.
        """
        plan = Plan()
        dirs: dict[str, int] = {"": 0}
        for rel, node in files:
            parent, _, name = rel.rpartition("/")
            self._plan_file({**node, "name": name, "links": 0}, self._dir_index(plan, dirs, parent), plan)
        root_fd = _open_target(dest)
        try:
            self.progress.start(what, plan.total_bytes())
            self._write(root_fd, plan, self._pack_writer(root_fd, plan))
        finally:
            os.close(root_fd)
            self.progress.finish()
        damaged = [f for f in plan.files if f.damaged]
        if damaged:
            raise IntegrityError(f"{len(damaged)} file(s) of the snapshot are damaged, e.g. "
                                 f"{plan.rel(damaged[0].dir, damaged[0].name)}",
                                 hint="run `drorch verify` to see what is damaged")
        return plan.total_bytes()

    @staticmethod
    def _dir_index(plan: Plan, dirs: dict[str, int], rel: str) -> int:
        if rel not in dirs:
            parent, _, name = rel.rpartition("/")
            dirs[rel] = plan.dirs.add(Restorer._dir_index(plan, dirs, parent), name)
        return dirs[rel]

    # -- phase 1: the walk ------------------------------------------------------------------

    def _walk(self, root_nodes: list[Node], root_fd: int, include: list[str], plan: Plan) -> None:
        """Make what the trees hold, depth first with an explicit stack (any depth)."""
        stack = [_Frame(iter(self._nodes(root_nodes, "", plan)), 0, "", not include)]
        with DirFds(root_fd, plan.dirs) as fds:
            while stack:
                frame = stack[-1]
                node = next(frame.nodes, None)
                if node is None:
                    stack.pop()
                    self._leave(frame, stack[-1] if stack else None, fds, plan)
                    continue
                name = node["name"]
                rel = f"{frame.rel}/{name}" if frame.rel else name
                included = frame.included or any(fnmatch(rel, p) for p in include)
                if node.get("type") == "dir":
                    child = self._enter(node, frame, rel, included, fds, plan)
                    if child is not None:
                        stack.append(child)
                elif included:
                    frame.anything |= self._make(node, frame.dir, fds, plan)

    def _nodes(self, nodes: list[Node], rel: str, plan: Plan) -> list[Node]:
        """A tree's nodes that can be restored; bad and duplicate names are reported as damage."""
        names = Counter(n.get("name") for n in nodes)
        kept = []
        for node in nodes:
            name = node.get("name")
            where = f"{rel}/{name}" if rel else str(name)
            if not isinstance(name, str) or "/" in name or "\0" in name or name in ("", ".", ".."):
                plan.damage.append(Damage(rel or ".", f"the tree holds an entry named {name!r}"))
            elif names[name] > 1:
                if node is next(n for n in nodes if n.get("name") == name):
                    plan.damage.append(Damage(where, f"the tree lists this name {names[name]} times"))
            elif node.get("type") not in _KINDS:
                plan.damage.append(Damage(where, f"the node has an unknown type {node.get('type')!r}"))
            elif node.get("type") == "dir" and not isinstance(node.get("subtree"), str):
                plan.damage.append(Damage(where, "the directory's node has no subtree"))
            else:
                kept.append(node)
        return kept

    def _enter(self, node: Node, frame: _Frame, rel: str, included: bool, fds: DirFds,
               plan: Plan) -> _Frame | None:
        try:
            nodes = self._nodes(self._tree(node["subtree"]), rel, plan)
        except IntegrityError as err:
            why = re.sub(r"\b([0-9a-f]{12})[0-9a-f]{52}\b", r"\1", err.message)  # short IDs
            why = why.replace(f" blob {node['subtree'][:12]}", "")
            plan.damage.append(Damage(rel, f"its tree is unreadable ({why})", (node["subtree"],)))
            return None
        restore_fs.make_dir(fds.fd(frame.dir), node["name"])
        index = plan.dirs.add(frame.dir, node["name"])
        return _Frame(iter(nodes), index, rel, included, node, node["name"], frame.dir)

    def _leave(self, frame: _Frame, parent: _Frame | None, fds: DirFds, plan: Plan) -> None:
        """A directory is done: keep it (metadata later) if anything in it was included."""
        if parent is None or frame.node is None:
            return
        if frame.anything or frame.included:
            plan.metadata.append((frame.parent, frame.name, _for_metadata(frame.node)))
            self.stats.dirs += 1
            parent.anything = True
        else:  # made only to look for included files, and none was there
            with contextlib.suppress(OSError):
                os.rmdir(frame.name, dir_fd=fds.fd(frame.parent))

    def _make(self, node: Node, dir_index: int, fds: DirFds, plan: Plan) -> bool:
        kind = node.get("type")
        if kind == "file":
            self._plan_file(node, dir_index, plan, finish=True)
            return True
        if not restore_fs.make_special(fds.fd(dir_index), node["name"], node):
            return False  # sockets: restic records them and restores nothing either
        if kind == "symlink":
            self.stats.symlinks += 1
        else:
            self.stats.special += 1
        plan.metadata.append((dir_index, node["name"], _for_metadata(node)))
        return True

    def _plan_file(self, node: Node, dir_index: int, plan: Plan, *, finish: bool = False) -> None:
        """Plan one file's writes. With ``finish``, a file of one blob that is no hard link is
        ``whole``: its blob's writer makes, writes and finishes it (``fs.write_whole``), so it
        is neither created beforehand nor in the metadata pass. For 20,000 small files those
        two serial passes took 1.0 of a 3.9 s restore."""
        self.stats.files += 1
        key = (_number(node, "device_id"), _number(node, "inode"))
        linked = _number(node, "links") > 1 and key[1] > 0
        if linked:
            first = plan.inodes.get(key)
            if first is not None:  # restic's rule: the same inode is one file, linked again
                plan.files[first].links.append((dir_index, node["name"]))
                self.stats.hardlinks += 1
                return
            plan.inodes[key] = len(plan.files)
        index = len(plan.files)
        offset, placed, damaged = 0, 0, []
        content = node.get("content") or []
        for blob_id in content:
            found = self.repo.index.lookup(DATA, blob_id)
            if found is None:  # its length is unknown, so later blobs have no known offset
                damaged.append(blob_id)
                break
            pack_id, blob = found
            plan.writes.setdefault(pack_id, {}).setdefault(blob, []).append((index, offset))
            offset += blob.plain_length
            placed += 1
        size = max(offset, _number(node, "size")) if damaged else offset  # the content's, as written
        kept = _for_metadata(node)
        whole = finish and not linked and placed == 1 and len(content) == 1
        planned = PlannedFile(dir_index, node["name"], kept, size, len(content),
                              pending=placed, damaged=damaged, whole=whole)
        plan.files.append(planned)
        if not whole:
            plan.metadata.append((dir_index, node["name"], kept))

    # -- phase 2: contents ------------------------------------------------------------------

    def _pack_writer(self, root_fd: int, plan: Plan) -> PackWriter:
        return PackWriter(self.repo, plan, root_fd, self.progress, helpers=self.helpers,
                          helpers_after=self.helpers_after)

    def _write(self, root_fd: int, plan: Plan, packs: PackWriter) -> None:
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="restore")
        try:
            packs.start_helpers()
            batches = [range(i, min(i + FILES_PER_TASK, len(plan.files)))
                       for i in range(0, len(plan.files), FILES_PER_TASK)]
            for future in [pool.submit(_create_files, root_fd, plan, b) for b in batches]:
                future.result()
            _link_files(root_fd, plan)
            packs.write(pool)
        finally:  # after a failure, packs not started yet are not read at all
            pool.shutdown(wait=True, cancel_futures=True)
            packs.close()
            self.stats.blobs_by_helpers += packs.blobs_by_helpers
            for dir_index, name, failed in packs.warnings:
                self._warn(plan, dir_index, name, failed)

    # -- phase 3: damage and metadata -------------------------------------------------------

    def _set_aside_damaged(self, root_fd: int, plan: Plan) -> None:
        """Rename every damaged file (and its other links) NAME.drorch-damaged."""
        with DirFds(root_fd, plan.dirs) as fds:
            for f in plan.files:
                if not f.damaged:
                    continue
                problem = (f"{len(f.damaged)} of its {f.blobs} data blobs "
                           "damaged or missing")
                if f.whole:  # its one blob was never written: a hole of its size is what is left
                    restore_fs.create_file(fds.fd(f.dir), f.name, f.size)
                for dir_index, name in [(f.dir, f.name), *f.links]:
                    left_as: str | None = plan.rel(dir_index, name + DAMAGED_SUFFIX)
                    try:
                        restore_fs.rename_no_replace(fds.fd(dir_index), name, name + DAMAGED_SUFFIX)
                    except OSError:  # taken, or impossible: it must not stay under its own name
                        left_as = None
                        with contextlib.suppress(OSError):
                            os.unlink(name, dir_fd=fds.fd(dir_index))
                    plan.damage.append(Damage(plan.rel(dir_index, name), problem, tuple(f.damaged),
                                              left_as))

    def _apply_metadata(self, root_fd: int, plan: Plan) -> None:
        damaged = {(f.dir, f.name) for f in plan.files if f.damaged}
        as_root = os.geteuid() == 0
        with DirFds(root_fd, plan.dirs) as fds:
            for dir_index, name, node in plan.metadata:  # children before their directory
                if (dir_index, name) in damaged:
                    continue
                failed = restore_fs.metadata_failures(
                    lambda: restore_fs.apply_metadata(fds.fd(dir_index), name, node, as_root))  # noqa: B023
                self._warn(plan, dir_index, name, failed)

    def _warn(self, plan: Plan, dir_index: int, name: str, failed: list[str]) -> None:
        if failed:
            self.stats.warnings.append(f"{plan.rel(dir_index, name)}: could not set {', '.join(failed)}")


def _for_metadata(node: Node) -> Node:
    """What setting an entry's metadata reads of its node. The plan keeps only this until the
    end: whole nodes of 20,000 files held 33 MiB, mostly content IDs, ctimes, owners' names."""
    return {key: node[key] for key in _METADATA_KEYS if key in node}


def _number(node: Node, key: str) -> int:
    """A numeric node field; 0 when absent or not a number (a crafted node is not an error here)."""
    value = node.get(key)
    return value if isinstance(value, int) and value >= 0 else 0


def _create_files(root_fd: int, plan: Plan, indexes: range) -> None:
    """Create files at their final size; holes until their blobs arrive."""
    with DirFds(root_fd, plan.dirs) as fds:
        for i in indexes:
            f = plan.files[i]
            if not f.whole:
                restore_fs.create_file(fds.fd(f.dir), f.name, f.size)


def _link_files(root_fd: int, plan: Plan) -> None:
    # two caches: looking up one directory must never close the other's descriptor
    with DirFds(root_fd, plan.dirs) as first_fds, DirFds(root_fd, plan.dirs) as fds:
        for f in plan.files:
            for dir_index, name in f.links:
                restore_fs.link(fds.fd(dir_index), name, first_fds.fd(f.dir), f.name)


def _open_target(dest: Path) -> int:
    """The descriptor of ``--to`` (created if missing); the operator named it, so a link is followed."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        return os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileExistsError:
        raise UsageError(f"--to {dest} exists and is not a directory; a directory snapshot restores "
                         "into a directory", hint="choose a new or existing directory") from None
    except NotADirectoryError:
        raise UsageError(f"--to {dest} is not a directory; a directory snapshot restores into one",
                         hint="choose a new or existing directory") from None
    except OSError as err:
        raise SourceError(f"cannot create {dest}: {err.strerror or err}") from None


def _remove_incomplete(root_fd: int, plan: Plan) -> None:
    """After a failure: every file not completely written is removed, with its links."""
    with DirFds(root_fd, plan.dirs) as fds:
        for f in plan.incomplete():
            for dir_index, name in [(f.dir, f.name), *f.links]:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=fds.fd(dir_index))


def _failure(err: OSError | DrorchError, dest: Path, plan: Plan) -> DrorchError:
    """The failure in one sentence, saying what is left in ``dest``."""
    incomplete = len(plan.incomplete())
    left = (f"{len(plan.files) - incomplete} of {len(plan.files)} files were restored completely and "
            f"kept; the {incomplete} unfinished ones were removed")
    if isinstance(err, DrorchError):
        return type(err)(f"{err.message.rstrip('.')}; {left}", hint=err.hint)
    where = f" ({err.filename})" if err.filename else ""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(f"out of space restoring into {dest}; {left}",
                         hint="free space there or restore onto a larger disk")
    if err.errno == errno.ELOOP:
        return SourceError(f"a symlink appeared inside {dest}{where} while restoring, and restore "
                           f"does not follow links; {left}")
    return SourceError(f"cannot restore into {dest}{where}: {err.strerror or err}; {left}")
