"""Snapshots: the committed roots. One small file each, written only after its data is durable."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from drorch.ports.errors import IntegrityError, ObjectNotFound
from drorch.ports.notices import warn
from drorch.repository.clock import newest
from drorch.repository.layout import FileType
from drorch.repository.repository import Repository
from drorch.repository.timefmt import format_ns, parse_ns

MIRROR_TAG_PREFIX = "drorch-mirror="


@dataclass
class Snapshot:
    time_ns: int
    tree: str
    paths: list[str]
    hostname: str = field(default_factory=socket.gethostname)
    username: str = field(default_factory=getpass.getuser)
    uid: int = field(default_factory=os.getuid)
    gid: int = field(default_factory=os.getgid)
    tags: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    parent: str | None = None
    summary: dict[str, Any] | None = None  # drorch's counters; restic ignores unknown keys
    id: str = ""  # storage ID, set once saved or loaded

    @property
    def mirror(self) -> str | None:
        for tag in self.tags:
            if tag.startswith(MIRROR_TAG_PREFIX):
                return tag[len(MIRROR_TAG_PREFIX):]
        return None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "time": format_ns(self.time_ns), "tree": self.tree, "paths": self.paths,
            "hostname": self.hostname, "username": self.username, "uid": self.uid, "gid": self.gid,
        }
        optional = {"parent": self.parent, "excludes": self.excludes, "tags": self.tags,
                    "drorch_summary": self.summary}
        doc.update({k: v for k, v in optional.items() if v})
        return doc

    @classmethod
    def from_json(cls, snapshot_id: str, doc: dict[str, Any]) -> Snapshot:
        return cls(
            time_ns=parse_ns(doc["time"]), tree=doc["tree"], paths=list(doc.get("paths") or []),
            hostname=doc.get("hostname", ""), username=doc.get("username", ""),
            uid=doc.get("uid", 0), gid=doc.get("gid", 0), tags=list(doc.get("tags") or []),
            excludes=list(doc.get("excludes") or []), parent=doc.get("parent"),
            summary=doc.get("drorch_summary"), id=snapshot_id,
        )


def save_snapshot(repo: Repository, snapshot: Snapshot) -> str:
    snapshot.id = repo.save_unpacked(FileType.SNAPSHOT, snapshot.to_json())
    return snapshot.id


def load_snapshots(repo: Repository, *, reread: bool = False) -> list[Snapshot]:
    """Every readable snapshot in the repository, oldest first.

    A damaged snapshot file (it does not authenticate, does not match its name, or
    is not a snapshot document) is skipped with a warning and recorded in
    ``repo.damaged_snapshots``, so one bad file blocks neither restoring the others
    nor new backups; verify reports it and prune deletes nothing while it is there.
    Store failures still raise: an unreachable store is not damage.

    The list is taken anew on every call, but a file this ``repo`` has already read
    and checked is not read again (``repo.snapshot_documents``): its name is the
    SHA-256 of its bytes, so it cannot have changed and still be listed under that
    name. An apply lists the snapshots four times, and with 92 snapshots each read
    took ~25 ms. ``reread`` reads and checks every file again (check: damage since
    must show).
    """
    found = []
    known = repo.snapshot_documents
    for sid, _ in repo.list_ids(FileType.SNAPSHOT):
        try:
            doc = None if reread else known.get(sid)
            if doc is None:
                doc = known[sid] = _snapshot_document(repo, sid)
            found.append(Snapshot.from_json(sid, doc))
        except ObjectNotFound:
            continue  # forgotten meanwhile
        except IntegrityError as err:
            _record_damage(repo, sid, err.message)
    return sorted(found, key=lambda s: s.time_ns)


def _snapshot_document(repo: Repository, sid: str) -> dict[str, Any]:
    doc = repo.load_unpacked(FileType.SNAPSHOT, sid)
    problem = _shape_problem(doc)
    if problem:
        raise IntegrityError(f"snapshots/{sid} on target {repo.name!r} is damaged: {problem}")
    return doc


def _shape_problem(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return "it is not a JSON object"
    if not isinstance(doc.get("tree"), str) or not doc["tree"]:
        return "it names no tree"
    try:
        parse_ns(doc.get("time"))  # type: ignore[arg-type]
    except ValueError:
        return f"its time {str(doc.get('time'))[:40]!r} is not a time"
    for key in ("paths", "tags", "excludes"):
        value = doc.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return f"its {key} is not a list of strings"
    return None


def _record_damage(repo: Repository, sid: str, message: str) -> None:
    if sid not in repo.damaged_snapshots:
        repo.damaged_snapshots[sid] = message
    warn(f"{message}; it is skipped (run `drorch verify`)")


def find_snapshot(snapshots: list[Snapshot], ref: str) -> Snapshot | None:
    """``latest`` or a unique prefix of a snapshot ID.

    ``latest`` is the newest snapshot not dated in the future (``repository.clock``).
    """
    if ref == "latest":
        return newest(snapshots)
    matches = [s for s in snapshots if s.id.startswith(ref)]
    return matches[0] if len(matches) == 1 else None
