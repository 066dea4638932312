"""The automatic ``checksum`` check: restored files equal the snapshot, byte for byte.

Every file a drill's ``restore`` step wrote is read back from the scratch
directory and each chunk's SHA-256 is compared with the blob ID the snapshot
records for it (blob IDs *are* SHA-256 of the plaintext, SPEC §4), so the check
needs no second download: it proves the restore wrote what was backed up,
nothing less (missing files), nothing different (corrupt chunks).
"""

from __future__ import annotations

import hashlib
import time
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from drorch.drill.result import CheckResult
from drorch.engine.connect import open_repository
from drorch.engine.operations import _common_parts
from drorch.policy import Policy
from drorch.ports.errors import DrorchError
from drorch.repository.pack import DATA, TREE
from drorch.repository.repository import Repository
from drorch.repository.snapshot import find_snapshot, load_snapshots
from drorch.repository.tree import decode_tree
from drorch.secrets import KeySource

__all__ = ["verify_restored"]


class _Mismatch(Exception):
    pass


def verify_restored(policy: Policy, keys: KeySource, *, step: str, target: str, snapshot_id: str,
                    path: Path, include: tuple[str, ...] = ()) -> CheckResult:
    """Compare the files under ``path`` with snapshot ``snapshot_id`` on ``target``."""
    started = time.time()
    name = f"checksum {step}"
    try:
        repo = open_repository(policy, target, keys)
        snapshot = find_snapshot(load_snapshots(repo), snapshot_id)
        if snapshot is None:
            raise _Mismatch(f"snapshot {snapshot_id[:8]} is gone from target {target}")
        repo.load_index()
        tree = _descend(repo, snapshot.tree, _common_parts(snapshot.paths))
        files, size = _compare(repo, tree, path, "", include, not include)
    except (_Mismatch, DrorchError, OSError) as error:
        return CheckResult(name, "checksum", False, str(error), 1, started, time.time())
    detail = f"{files} files ({size} bytes) in {path} match snapshot {snapshot_id[:8]}"
    return CheckResult(name, "checksum", True, detail, 1, started, time.time())


def _tree(repo: Repository, tree_id: str) -> list[dict[str, Any]]:
    return decode_tree(repo.load_blob(TREE, tree_id))


def _descend(repo: Repository, tree_id: str, parts: tuple[str, ...]) -> str:
    for part in parts:
        node = next((n for n in _tree(repo, tree_id) if n["name"] == part), None)
        if node is None or node.get("type") != "dir":
            raise _Mismatch(f"the snapshot has no directory {part!r} on its path")
        tree_id = node["subtree"]
    return str(tree_id)


def _compare(repo: Repository, tree_id: str, into: Path, rel: str, include: tuple[str, ...],
             included: bool) -> tuple[int, int]:
    files = size = 0
    for node in _tree(repo, tree_id):
        node_rel = f"{rel}/{node['name']}" if rel else node["name"]
        here = included or any(fnmatch(node_rel, p) for p in include)
        if node["type"] == "dir":
            f, s = _compare(repo, node["subtree"], into / node["name"], node_rel, include, here)
            files, size = files + f, size + s
        elif node["type"] == "file" and here:
            size += _compare_file(repo, node, into / node["name"], node_rel)
            files += 1
    return files, size


def _compare_file(repo: Repository, node: dict[str, Any], path: Path, rel: str) -> int:
    if not path.is_file():
        raise _Mismatch(f"{rel} is in the snapshot but was not restored")
    total = 0
    with path.open("rb") as handle:
        for blob_id in node.get("content") or []:
            found = repo.index.lookup(DATA, blob_id)
            if found is None:
                raise _Mismatch(f"chunk {blob_id[:12]} of {rel} is missing from target {repo.name}")
            chunk = handle.read(found[1].plain_length)
            total += len(chunk)
            if hashlib.sha256(chunk).hexdigest() != blob_id:
                raise _Mismatch(f"{rel} differs from the snapshot at byte {total - len(chunk)}")
        if handle.read(1):
            raise _Mismatch(f"{rel} is longer than in the snapshot")
    return total
