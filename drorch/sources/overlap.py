"""A repository inside the directory it protects: excluded from it, and said so.

Backing up ``/srv`` into ``file:///srv/backups/repo`` is a natural thing to
write, and without care every run would store the repository inside itself,
growing each snapshot by the size of all earlier ones. restic leaves that to
the operator; drorch excludes every ``file://`` target that lies inside a
directory source, automatically, with a note in ``plan`` and ``apply``. The
exclusion is an anchored pattern (``/backups/repo``: a leading ``/`` means
"from the source's root", so no other entry of the same name is touched).

A target that *is* the source directory, or a source inside the repository's
own folders (``data/``, ``snapshots/``...), cannot be made to work by
excluding anything; that mirror is refused, naming both paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from drorch.policy import Source, Target

__all__ = ["Overlap", "repository_overlap"]

_GLOB_CHARS = re.compile(r"([*?\[])")
_REPOSITORY_FOLDERS = ("data", "index", "keys", "locks", "snapshots", "tmp")


@dataclass(frozen=True)
class Overlap:
    excludes: tuple[str, ...] = ()  # anchored patterns to add to the source's excludes
    notes: tuple[str, ...] = ()  # one sentence per excluded repository
    problem: str | None = None  # the mirror cannot run at all


def repository_overlap(source: Source, targets: Iterable[Target]) -> Overlap:
    """What to exclude from ``source`` so that none of ``targets`` is stored inside itself."""
    if source.type != "directory":
        return Overlap()
    root = _real(source.path)
    excludes: list[str] = []
    notes: list[str] = []
    for target in targets:
        if target.local_path is None:
            continue
        repo = _real(target.local_path)
        if repo == root or any(root.is_relative_to(repo / f) for f in _REPOSITORY_FOLDERS):
            what = "is" if repo == root else "holds"
            return Overlap(problem=f"the repository of target {target.name!r} ({repo}) {what} the "
                                   f"source directory {root}; keep repository and source apart")
        if repo.is_relative_to(root):
            rel = repo.relative_to(root).as_posix()
            excludes.append("/" + _GLOB_CHARS.sub(r"[\1]", rel))
            notes.append(f"the repository of target {target.name!r} ({repo}) is inside source "
                         f"{source.name!r}; it is excluded from the snapshot")
    return Overlap(tuple(excludes), tuple(notes))


def _real(path: Path) -> Path:
    """``path`` with symlinks and ``..`` resolved, as far as it exists (the rest kept as written)."""
    return Path(os.path.realpath(path))
