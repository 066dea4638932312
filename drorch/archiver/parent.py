"""Reading the parent snapshot's trees, which tell the archivers what they need not read again.

The parent is an optimisation, never a source of truth: a tree that cannot be
loaded (damaged, missing) is reported once on the progress stream and treated
as empty, so the run reads everything afresh instead of failing.
"""

from __future__ import annotations

from typing import Any

from drorch.ports.errors import DrorchError
from drorch.ports.progress import Progress
from drorch.repository.pack import TREE
from drorch.repository.repository import Repository
from drorch.repository.tree import decode_tree

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
