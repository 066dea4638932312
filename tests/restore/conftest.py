"""Fixtures for restore tests: crafted repositories, and backing up with one tool, restoring with the other.

``crafted`` writes trees that drorch's archiver would never produce (duplicate
names, links where directories were, damaged packs) into a real repository,
using drorch's own repository-format code: that is scaffolding, the thing under
test is ``drorch restore`` run as a subprocess against the result.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from drorch.providers.local import LocalStore
from drorch.repository.pack import DATA, TREE
from drorch.repository.repository import Repository
from drorch.repository.snapshot import MIRROR_TAG_PREFIX, Snapshot, save_snapshot
from drorch.repository.timefmt import now_ns
from drorch.repository.tree import GO_MODE_DIR, GO_MODE_SYMLINK, encode_tree
from drorch.repository.uploader import PackUploader

Node = dict[str, Any]
MTIME = "2021-03-04T05:06:07.123456789Z"


@dataclass
class Crafted:
    """A repository (made by ``drorch apply``) to which tests add hand-built snapshots."""

    root: Path  # the repository directory
    policy: Path
    source: Path  # the policy's source path: crafted snapshots are recorded under it
    password: bytes
    _repo: Repository | None = field(default=None, init=False)
    _uploader: PackUploader | None = field(default=None, init=False)

    @property
    def repo(self) -> Repository:
        if self._repo is None:
            self._repo = Repository.open(LocalStore(self.root), self.password, "local")
            self._repo.load_index()
            self._uploader = PackUploader(self._repo)
        return self._repo

    def blob(self, data: bytes) -> str:
        """Store a data blob; returns its ID."""
        self.repo  # noqa: B018 - opens the repository and the uploader
        assert self._uploader is not None
        return self._uploader.save(DATA, data)

    def file(self, name: str, data: bytes, mode: int = 0o644, **extra: Any) -> Node:
        content = [self.blob(data[i:i + 65536]) for i in range(0, len(data), 65536)]
        return {"name": name, "type": "file", "mode": mode, "mtime": MTIME, "atime": MTIME,
                "uid": 0, "gid": 0, "size": len(data), "content": content, **extra}

    def dir(self, name: str, nodes: list[Node], mode: int = 0o755) -> Node:
        return {"name": name, "type": "dir", "mode": GO_MODE_DIR | mode, "mtime": MTIME,
                "atime": MTIME, "uid": 0, "gid": 0, "subtree": self.tree(nodes)}

    def symlink(self, name: str, target: str, mode: int = 0o777) -> Node:
        return {"name": name, "type": "symlink", "mode": GO_MODE_SYMLINK | mode, "mtime": MTIME,
                "atime": MTIME, "uid": 0, "gid": 0, "linktarget": target}

    def tree(self, nodes: list[Node]) -> str:
        """A tree blob holding ``nodes`` exactly as given (duplicates and all)."""
        self.repo  # noqa: B018
        assert self._uploader is not None
        return self._uploader.save(TREE, encode_tree(nodes))

    def snapshot(self, nodes: list[Node], path: Path | None = None) -> str:
        """Save a snapshot whose ``path`` (default: the source) holds ``nodes``; returns its ID.

        The last component of ``path`` is a directory holding ``nodes``, unless
        ``nodes`` is a single file node named like it (an image snapshot).
        """
        path = path or self.source
        parts = path.parts[1:]
        if len(nodes) == 1 and nodes[0]["type"] == "file" and nodes[0]["name"] == parts[-1]:
            node, parts = nodes[0], parts[:-1]
        else:
            node = self.dir(parts[-1], nodes)
            parts = parts[:-1]
        for part in reversed(parts):
            node = self.dir(part, [node])
        root = self.tree([node])
        self.flush()
        snap = Snapshot(now_ns(), root, [str(path)], tags=[MIRROR_TAG_PREFIX + "m"])
        return save_snapshot(self.repo, snap)

    def flush(self) -> None:
        """Close the open packs: blobs stored after this land in new ones."""
        assert self._uploader is not None
        self.repo.save_index(self._uploader.flush())
        self._uploader = PackUploader(self.repo)

    def pack_of(self, blob_id: str, blob_type: str = DATA) -> Path:
        found = self.repo.index.lookup(blob_type, blob_id)
        assert found is not None
        pack_id, _ = found
        return self.root / "data" / pack_id[:2] / pack_id

    def damage_blob(self, blob_id: str, blob_type: str = DATA) -> None:
        """Flip a byte inside one blob's ciphertext in its pack file (closing the open packs first)."""
        self.flush()
        found = self.repo.index.lookup(blob_type, blob_id)
        assert found is not None
        pack_id, blob = found
        pack = self.pack_of(blob_id, blob_type)
        data = bytearray(pack.read_bytes())
        data[blob.offset + blob.length // 2] ^= 0xFF
        pack.chmod(0o644)
        pack.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def _crafted_template(tmp_path_factory: pytest.TempPathFactory, drorch_key: str, e2e: Any) -> Path:
    """One repository made by ``drorch apply`` of a one-file source; copied for each test."""
    base = tmp_path_factory.mktemp("crafted-template")
    source = base / "src"
    source.mkdir()
    (source / "seed.txt").write_bytes(b"seed\n")
    policy = e2e.make_policy(base, source, base / "repo")
    e2e.apply_ok(policy, e2e.drorch_environment(base / "home", drorch_key))
    return base


@pytest.fixture
def crafted(tmp_path: Path, _crafted_template: Path, drorch_key: str, e2e: Any) -> Crafted:
    """A private copy of the template repository, ready for crafted snapshots."""
    shutil.copytree(_crafted_template / "repo", tmp_path / "repo")
    source = _crafted_template / "src"
    policy = e2e.make_policy(tmp_path, source, tmp_path / "repo")
    return Crafted(tmp_path / "repo", policy, source, drorch_key.encode())


def _fingerprint(root: Path) -> dict[str, tuple]:
    """Everything about ``root`` and below that a stray write, chmod, chown or utime changes."""
    state = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not \
            path.is_symlink() else ""
        state[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                              st.st_mtime_ns, st.st_ctime_ns, digest)
    return state


@pytest.fixture
def fingerprint() -> Any:
    return _fingerprint


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside every --to, that crafted links point at; compare with ``fingerprint``."""
    root = tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    (root / "victim.txt").write_bytes(b"must not change\n")
    (root / "sub" / "inner.txt").write_bytes(b"must not change either\n")
    os.chmod(root / "victim.txt", 0o600)
    return root


def cross_restore(direction: str, src: Path, policy: Path, repo: Path, work: Path, restic: Any,
                  env: dict[str, str], e2e: Any) -> Path:
    """Back up ``src`` with one tool and restore it with the other; returns the restored root.

    ``direction`` is ``drorch-to-restic`` (drorch apply, restic check and restore) or
    ``restic-to-drorch`` (restic backup, drorch restore).
    """
    if direction == "drorch-to-restic":
        e2e.apply_ok(policy, env)
        restic.check(repo)
        restic("restore", "latest", "--target", work / "by-restic", repo=repo)
        return Path(e2e.restic_restored_root(work / "by-restic", src))
    restic.init(repo)
    restic("backup", src, repo=repo)
    proc = e2e.run_drorch("restore", policy, "latest", "--to", work / "by-drorch", "--quiet", env=env)
    assert proc.returncode == 0, e2e.describe(proc)
    return work / "by-drorch"


@pytest.fixture(name="cross_restore")
def cross_restore_fixture() -> Any:
    return cross_restore
