"""Directory memos: what a snapshot's walk saw of each directory, for the next walk.

A no-change backup used to read every directory's parent tree (decrypt, decode,
check its nodes) and build a node for every entry, only to find them equal: on
20,000 files that was most of the run. With the memo, a directory whose entries
all have the signature they had (``tree.stat_signature``: every stat field and
xattr a node holds) and whose files' blobs are all in the index is the parent's
tree, unread; only its subdirectories are still walked.

A memo maps each directory (its path relative to the source, ``""`` for the source
itself) to ``(tree ID, {name: signature}, {file name: blob IDs})``. It is a local
cache, like the block maps: it lives under
``$DRORCH_HOME/dirmemos/<repository id>/<source path key>/`` and is named by the
root tree of the snapshot it describes, which fixes every tree below it, so it is
only ever applied to the snapshot it was made from. A missing, torn, foreign or
other-Python memo is ignored (the body is checked against its SHA-256 before it
is decoded): the run is slower, never wrong. Writes are atomic; the newest
``KEEP`` per source are kept.
"""

from __future__ import annotations

import hashlib
import marshal
import sys
from pathlib import Path

from drorch.state.cachefiles import keep_newest, read_cache_file, source_cache_dir, write_cache_file

KEEP = 2  # the parent of the next run, and its parent in case the last run did not commit
# Above this many entries no memo is kept: it costs ~300 bytes an entry in memory (the
# signature, the file's blob IDs, the dict slots); such sources walk their parent trees as before.
MAX_ENTRIES = 500_000
_MAGIC = b"drorch-dirmemo-2\n"
_PYTHON = list(sys.version_info[:2])  # marshal's format is only promised within a version

DirEntry = tuple[str, dict[str, bytes], dict[str, list[str]]]
DirMemo = dict[str, DirEntry]


class DirMemoStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, root_tree: str) -> Path:
        return self.root / f"{root_tree}.memo"

    def load(self, root_tree: str | None) -> DirMemo | None:
        """The memo of the snapshot whose root tree is ``root_tree``, or None."""
        if not root_tree:
            return None
        found = read_cache_file(self._path(root_tree), _MAGIC)
        if found is None:
            return None
        header, body = found
        if (header.get("tree") != root_tree or header.get("python") != _PYTHON
                or header.get("sha256") != hashlib.sha256(body).hexdigest()):
            return None
        try:
            memo = marshal.loads(body)
        except (EOFError, ValueError, TypeError):
            return None
        return memo if isinstance(memo, dict) else None

    def save(self, root_tree: str, memo: DirMemo) -> None:
        """Best effort: a memo that cannot be written only makes the next run slower."""
        body = marshal.dumps(memo)
        header = {"tree": root_tree, "python": _PYTHON, "sha256": hashlib.sha256(body).hexdigest()}
        if write_cache_file(self._path(root_tree), _MAGIC, header, body):
            self._trim()

    def _trim(self) -> None:
        keep_newest(self.root, "*.memo", KEEP)


def dirmemo_store(repository_id: str, source: Path) -> DirMemoStore:
    return DirMemoStore(source_cache_dir("dirmemos", repository_id, source))
