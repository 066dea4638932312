"""Where each kind of file lives in a repository: the one place that builds object names.

restic's default layout: ``config`` at the top, packs fanned out by the first two
hex digits of their ID, everything else flat under its type's folder. Adapters
never build names; they store whatever name this module gives them.
"""

from __future__ import annotations

from enum import Enum

from drorch.ports.store import MUTABLE_PREFIXES, kept_immutable  # noqa: F401 (re-exported)

CONFIG = "config"


class FileType(Enum):
    KEY = "keys"
    PACK = "data"
    INDEX = "index"
    SNAPSHOT = "snapshots"
    LOCK = "locks"

    @property
    def prefix(self) -> str:
        return self.value + "/"


def object_name(kind: FileType, file_id: str) -> str:
    """The object name of one file; packs sit below a two-hex-digit fan-out folder."""
    if kind is FileType.PACK:
        return f"data/{file_id[:2]}/{file_id}"
    return f"{kind.value}/{file_id}"


def file_id_of(name: str) -> str:
    """The storage ID (last path component) of an object name from a listing."""
    return name.rsplit("/", 1)[-1]


assert FileType.LOCK.prefix in MUTABLE_PREFIXES, "lock files must never be kept immutable"
