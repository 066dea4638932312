"""Checking a repository: structure always, every byte with ``read_data``.

Structure: every snapshot's trees load, every blob they reference is indexed,
every pack the index names exists with the size the index implies. Data: each
pack is read whole, its SHA-256 must equal its name, its header must list what
the index says, and every blob must authenticate and match its hash. Findings
are collected, never raised one by one, so one run names every damaged pack.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from drorch.ports.errors import DrorchError
from drorch.ports.progress import NoProgress, Progress
from drorch.repository.layout import FileType, object_name
from drorch.repository.nested import Walk, run_nested
from drorch.repository.pack import DATA, TREE, PackedBlob, PackFormatError, pack_size, parse_tail
from drorch.repository.repository import Repository
from drorch.repository.snapshot import load_snapshots
from drorch.repository.tree import decode_tree, node_problems


@dataclass
class CheckReport:
    snapshots: int = 0
    trees: int = 0
    packs: int = 0
    packs_read: int = 0
    bytes_read: int = 0
    damaged_packs: dict[str, str] = field(default_factory=dict)  # pack id -> what is wrong
    errors: list[str] = field(default_factory=list)  # problems not tied to one pack
    unreferenced_packs: list[str] = field(default_factory=list)  # harmless; prune removes them

    @property
    def ok(self) -> bool:
        return not self.damaged_packs and not self.errors


class Checker:
    def __init__(self, repo: Repository, progress: Progress | None = None) -> None:
        self.repo = repo
        self.progress = progress or NoProgress()
        self.report = CheckReport()

    def run(self, read_data: bool = False, sample_pct: float = 100.0) -> CheckReport:
        snapshots = load_snapshots(self.repo, reread=True)  # before the index: restic's read order
        self.report.errors += [f"damaged snapshot file: {problem}"
                               for problem in self.repo.damaged_snapshots.values()]
        self.repo.load_index()
        self.report.snapshots = len(snapshots)
        indexed = self.repo.index.packs()
        self._check_packs_exist(indexed)
        seen: set[str] = set()
        for snapshot in snapshots:
            run_nested(self._check_tree(snapshot.tree, f"snapshot {snapshot.id[:8]}", seen))
        if read_data:
            self._read_packs(indexed, sample_pct)
        return self.report

    def _check_packs_exist(self, indexed: dict[str, list[PackedBlob]]) -> None:
        stored = dict(self.repo.list_ids(FileType.PACK))
        self.report.packs = len(stored)
        for pack_id, blobs in indexed.items():
            if pack_id not in stored:
                self.report.damaged_packs[pack_id] = "missing from the store"
            elif stored[pack_id] != pack_size(blobs):
                self.report.damaged_packs[pack_id] = (
                    f"size is {stored[pack_id]} bytes, the index implies {pack_size(blobs)}")
        self.report.unreferenced_packs = sorted(set(stored) - set(indexed))

    def _check_tree(self, tree_id: str, where: str, seen: set[str]) -> Walk[None]:
        """Check one tree and, as nested walks (any depth), the trees below it."""
        if tree_id in seen:
            return
        seen.add(tree_id)
        try:
            nodes = decode_tree(self.repo.load_blob(TREE, tree_id))
        except (DrorchError, ValueError) as err:
            self._record_blob_problem(TREE, tree_id, f"{where}: tree {tree_id[:12]}: {err}")
            return
        self.report.trees += 1
        self.report.errors += [f"{where}: tree {tree_id[:12]}: {problem}" for problem in node_problems(nodes)]
        for node in nodes:
            if node["type"] == "dir":
                yield self._check_tree(node["subtree"], where, seen)
            elif node["type"] == "file":
                for blob_id in node.get("content") or []:
                    if not self.repo.index.has(DATA, blob_id):
                        self.report.errors.append(
                            f"{where}: file {node['name']!r} needs blob {blob_id[:12]} "
                            "which is in no pack")

    def _record_blob_problem(self, blob_type: str, blob_id: str, message: str) -> None:
        found = self.repo.index.lookup(blob_type, blob_id)
        if found:
            self.report.damaged_packs.setdefault(found[0], message)
        else:
            self.report.errors.append(message)

    def _read_packs(self, indexed: dict[str, list[PackedBlob]], sample_pct: float) -> None:
        candidates = sorted(p for p in indexed if p not in self.report.damaged_packs)
        if sample_pct < 100:
            count = max(1, round(len(candidates) * sample_pct / 100)) if candidates else 0
            candidates = random.sample(candidates, count)
        self.progress.start("reading packs", sum(pack_size(indexed[p]) for p in candidates))
        with ThreadPoolExecutor(4, thread_name_prefix="check") as pool:
            for pack_id, problem, size in pool.map(
                    lambda p: (p, *self._read_pack(p, indexed[p])), candidates):
                self.report.packs_read += 1
                self.report.bytes_read += size
                if problem:
                    self.report.damaged_packs[pack_id] = problem
                self.progress.advance(size)
        self.progress.finish()

    def _read_pack(self, pack_id: str, indexed: list[PackedBlob]) -> tuple[str | None, int]:
        """What is wrong with one pack (None if nothing) and how many bytes were read."""
        try:
            data = self.repo.store.get(object_name(FileType.PACK, pack_id))
        except DrorchError as err:
            return f"cannot be read: {err}", 0
        return _first(self._pack_problems(pack_id, data, indexed)), len(data)

    def _pack_problems(self, pack_id: str, data: bytes, indexed: list[PackedBlob]
                       ) -> Iterator[str]:
        if hashlib.sha256(data).hexdigest() != pack_id:
            yield "content does not match its name (SHA-256 mismatch)"
            return
        try:
            listed = parse_tail(self.repo.key, data, len(data))
        except PackFormatError as err:
            yield f"header unreadable: {err}"
            return
        assert not isinstance(listed, int)  # the whole pack was passed
        if {(b.type, b.id, b.offset) for b in indexed} - {(b.type, b.id, b.offset) for b in listed}:
            yield "header does not list blobs the index puts there"
        view = memoryview(data)
        for blob in listed:
            try:
                self.repo.open_blob(pack_id, blob, view[blob.offset : blob.offset + blob.length])
            except DrorchError:
                yield f"blob {blob.id[:12]} at offset {blob.offset} is damaged"
                return


def _first(problems: Iterator[str]) -> str | None:
    return next(problems, None)
