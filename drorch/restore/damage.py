"""What a directory restore will write, and what it found damaged: the restorer's bookkeeping.

A plan is built by walking the snapshot's trees (``drorch.restore.restorer``); it names
directories by number (``restore.fs.Dirs``), files by their index in ``files``,
and per pack the blobs needed and the (file, offset) places each one goes.
Each file counts the blob writes still pending, so a file is known complete
only when every one of its blobs was authenticated and written: whatever else
happens, restore never leaves a file that looks complete but is not.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from drorch.ports.errors import IntegrityError
from drorch.repository.pack import PackedBlob
from drorch.restore.fs import Dirs

Node = dict[str, Any]
DAMAGED_SUFFIX = ".drorch-damaged"


@dataclass(slots=True)
class PlannedFile:
    dir: int
    name: str
    node: Node  # what setting its metadata needs of the snapshot's node
    size: int
    blobs: int  # in its content
    pending: int = 0  # blob writes not yet done
    damaged: list[str] = field(default_factory=list)  # IDs of blobs that could not be restored
    links: list[tuple[int, str]] = field(default_factory=list)  # other hard links to it
    whole: bool = False  # made and finished by the writer of its one blob (Restorer._plan_file)


@dataclass(frozen=True)
class Damage:
    """One entry of the snapshot that was not restored intact, for the report."""

    path: str  # relative to --to
    problem: str
    blobs: tuple[str, ...] = ()
    left_as: str | None = None  # where a partly restored file was put, else nothing was left

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "problem": self.problem, "blobs": list(self.blobs),
                "left_as": self.left_as}

    def __str__(self) -> str:
        blobs = ", ".join(b[:12] for b in self.blobs[:3]) + (" ..." if len(self.blobs) > 3 else "")
        which = f" ({'blob' if len(self.blobs) == 1 else 'blobs'} {blobs})" if blobs else ""
        where = f", left as {self.left_as}" if self.left_as else ", not restored"
        return f"{self.path}: {self.problem}{which}{where}"


@dataclass
class Plan:
    dirs: Dirs = field(default_factory=Dirs)
    files: list[PlannedFile] = field(default_factory=list)
    writes: dict[str, dict[PackedBlob, list[tuple[int, int]]]] = field(default_factory=dict)
    metadata: list[tuple[int, str, Node]] = field(default_factory=list)  # children before parents
    inodes: dict[tuple[int, int], int] = field(default_factory=dict)  # (device, inode) -> file
    damage: list[Damage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rel(self, dir_index: int, name: str) -> str:
        return self.dirs.rel(dir_index, name)

    def written(self, file_index: int) -> None:
        """One blob of the file is on disk."""
        with self._lock:
            self.files[file_index].pending -= 1

    def blob_damaged(self, file_index: int, blob_id: str) -> None:
        with self._lock:
            self.files[file_index].damaged.append(blob_id)

    def incomplete(self) -> list[PlannedFile]:
        """Files with a blob not written (yet, or ever)."""
        return [f for f in self.files if f.pending > 0 or f.damaged]

    def total_bytes(self) -> int:
        return sum(len(places) * blob.plain_length
                   for blobs in self.writes.values() for blob, places in blobs.items())


def damage_sentence(damaged: list[dict[str, Any]], limit: int = 10) -> str:
    """What a restore could not restore intact, in one sentence (the first ``limit`` named)."""
    shown = "; ".join(str(Damage(d["path"], d["problem"], tuple(d["blobs"]), d["left_as"]))
                      for d in damaged[:limit])
    more = f"; and {len(damaged) - limit} more (see --json)" if len(damaged) > limit else ""
    count = "1 entry" if len(damaged) == 1 else f"{len(damaged)} entries"
    return f"{count} of the snapshot not restored intact, everything else was: {shown}{more}"


class RestoreDamaged(IntegrityError):
    """A restore finished, but some entries could not be restored intact (exit 3).

    ``damaged`` lists them (``Damage.to_json``); everything else was restored.
    """

    def __init__(self, damaged: list[dict[str, Any]]) -> None:
        super().__init__(damage_sentence(damaged), hint="run `drorch verify --read-data` to see "
                                                        "what else is damaged")
        self.damaged = damaged
