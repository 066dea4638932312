"""The parent snapshot, which tells the archivers what they need not read again.

Its trees say which files are unchanged; a directory memo
(``drorch.sources.dirmemo``) says which directories are, without reading their
trees. The parent is an optimisation, never a source of truth: a tree that
cannot be loaded (damaged, missing) is reported once on the progress stream and
treated as empty, so the run reads everything afresh instead of failing; a memo
entry that does not describe the tree it is used for, or is malformed, is not used.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from drorch.ports.errors import DrorchError
from drorch.ports.progress import Progress
from drorch.repository.pack import DATA, TREE
from drorch.repository.repository import Repository
from drorch.repository.tree import decode_tree
from drorch.sources.dirmemo import DirEntry, DirMemo

Node = dict[str, Any]


def parent_nodes(repo: Repository, tree_id: str | None, progress: Progress, fallback: str) -> dict[str, Node]:
    """Name → node of the parent tree ``tree_id`` ({} without one); ``fallback`` says what a
    damaged tree costs ("rereading files")."""
    if not tree_id:
        return {}
    try:
        return {n["name"]: n for n in decode_tree(repo.load_blob(TREE, tree_id))}
    except DrorchError as err:
        progress.note(f"parent tree {tree_id[:12]} unreadable, {fallback}: {err}")
        return {}


class Parent:
    """A directory in the parent snapshot: its tree ID (None: no parent), its nodes by name
    (the tree is read when they are first asked for) and its memo entry (None: none)."""

    def __init__(self, repo: Repository, progress: Progress, tree_id: str | None,
                 memo: DirEntry | None = None) -> None:
        self._repo, self._progress = repo, progress
        self.tree_id = tree_id
        self.memo = memo

    @cached_property
    def nodes(self) -> dict[str, Node]:
        return parent_nodes(self._repo, self.tree_id, self._progress, "rereading files")

    def holds(self, signatures: dict[str, bytes], files: list[str]) -> bool:
        """True when the memo shows exactly these entries, each with this signature, and the
        repository still has this tree and every blob of these ``files``: then the
        directory's nodes are the parent's, unread (its subdirectories may still differ)."""
        if self.memo is None or self.tree_id is None:
            return False
        _tree, remembered, contents = self.memo
        if remembered != signatures or not self._repo.index.has(TREE, self.tree_id):
            return False
        index = self._repo.index
        for name in files:
            blobs = contents.get(name)
            if not isinstance(blobs, list) or not all(index.has(DATA, blob) for blob in blobs):
                return False
        return True


def remembered(memo: DirMemo | None, rel: str) -> DirEntry | None:
    """The memo's entry for directory ``rel``, if there is one and it is well formed."""
    entry = memo.get(rel) if memo is not None else None
    if (isinstance(entry, tuple) and len(entry) == 3 and isinstance(entry[0], str)
            and isinstance(entry[1], dict) and isinstance(entry[2], dict)):
        return entry
    return None


def memo_entry(memo: DirMemo | None, rel: str, tree_id: str | None) -> DirEntry | None:
    """The memo of directory ``rel`` if there is one, well formed, describing tree ``tree_id``."""
    entry = remembered(memo, rel)
    return entry if entry is not None and tree_id and entry[0] == tree_id else None
