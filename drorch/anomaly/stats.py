"""What one apply changed, measured against the snapshot it was taken on top of.

The archiver counts files new, changed (re-read) and unchanged; of the changed
ones, only those whose content differs count as changed here, so touching
every file, or a failback restoring a tree onto new inodes, is not an attack.
Deletions are what the parent held that the new snapshot does not (its
``files_before - re-read - unchanged``). Fractions
are of the parent's files and bytes, so a mirror of 100 files and one of a
million are judged on the same scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ChangeStats:
    snapshot: str
    time_ns: int
    has_parent: bool  # False for a mirror's first snapshot: everything is new, nothing to judge
    files_before: int
    bytes_before: int
    files_new: int
    files_changed: int  # content changed: a `touch` or a restore onto new inodes is no change
    files_deleted: int
    bytes_new: int  # plaintext bytes of blobs the repository did not have
    bytes_incompressible: int  # of those, bytes that zstd could not shrink by 10%

    @property
    def changed_share(self) -> float:
        return self.files_changed / max(self.files_before, 1)

    @property
    def new_share(self) -> float:
        return self.files_new / max(self.files_before, 1)

    @property
    def deleted_share(self) -> float:
        return self.files_deleted / max(self.files_before, 1)

    @property
    def bytes_new_share(self) -> float:
        return self.bytes_new / max(self.bytes_before, 1)

    @property
    def incompressible_share(self) -> float:
        """Share of the new data that did not compress: near 1 for encrypted data."""
        return self.bytes_incompressible / max(self.bytes_new, 1)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def deleted_files(files_before: int, files_changed: int, files_unmodified: int) -> int:
    """Files of the parent the new snapshot no longer has (never negative)."""
    return max(0, files_before - files_changed - files_unmodified)
