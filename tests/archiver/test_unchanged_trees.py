"""A run that finds a directory as its parent snapshot left it reuses the parent's tree.

Encoding and hashing every tree again cost a no-change run more than its walk;
the tree IDs (and so the snapshot) are the same either way, so these tests count
the trees encoded, and end with stock restic on what the changed run wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drorch.archiver import archiver as archiver_module
from drorch.archiver.archiver import Archiver
from drorch.providers.local import LocalStore
from drorch.repository.repository import Repository
from drorch.repository.snapshot import Snapshot, save_snapshot
from drorch.repository.timefmt import now_ns
from drorch.repository.uploader import PackUploader
from tests.conftest import Restic, restic_restored_root
from tests.support.nested import nested_source


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return nested_source(tmp_path / "src", subs=4, files=5, repeat=20)


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many trees each archive encodes."""
    calls: list[int] = []
    real = archiver_module.encode_tree

    def counting(nodes: list[dict[str, Any]]) -> bytes:
        calls.append(len(nodes))
        return real(nodes)

    monkeypatch.setattr(archiver_module, "encode_tree", counting)
    return calls


def _backup(repo: Repository, source: Path, parent: str | None) -> str:
    uploader = PackUploader(repo)
    tree = Archiver(repo, uploader).archive(source, parent)
    repo.save_index(uploader.flush())
    uploader.close()
    save_snapshot(repo, Snapshot(now_ns(), tree, [str(source)]))
    return tree


def test_a_no_change_run_encodes_no_tree(tmp_path: Path, source: Path, encoded: list[int]) -> None:
    repo = Repository.init(LocalStore(tmp_path / "repo"), b"pw", "test")
    first = _backup(repo, source, None)
    trees_of_first = len(encoded)
    encoded.clear()

    assert _backup(repo, source, first) == first
    assert encoded == [] and trees_of_first > 15


def test_a_changed_file_re_encodes_only_its_directories(tmp_path: Path, source: Path, encoded: list[int],
                                                        drorch_key: str, restic: Restic,
                                                        assert_same_tree: Any) -> None:
    path = tmp_path / "repo"
    restic.init(path)
    repo = Repository.open(LocalStore(path), drorch_key.encode(), "test")
    first = _backup(repo, source, None)
    encoded.clear()
    (source / "t1" / "s2" / "f3").write_text("changed\n")

    second = _backup(repo, source, first)

    # s2, t1, the source itself, then one tree per component of its absolute path
    assert second != first and len(encoded) == 3 + len(source.parts) - 1
    restic.check(path)
    restic("restore", "latest", "--target", str(tmp_path / "out"), repo=path)
    assert_same_tree(source, restic_restored_root(tmp_path / "out", source))
