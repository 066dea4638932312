"""A directory the memo shows unchanged is the parent's tree, unread; any change is still seen.

The oracle is the walk without a memo: after every kind of change, a run with the
parent's memo must give exactly the tree a run without one gives (same bytes, so
the same ID), and a no-change run must give the parent's tree without reading any
parent tree. Stock restic checks and restores what the memo runs wrote.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drorch.archiver import parent as parent_module
from drorch.archiver.archiver import Archiver
from drorch.providers.local import LocalStore
from drorch.repository.pack import DATA
from drorch.repository.repository import Repository
from drorch.repository.snapshot import Snapshot, save_snapshot
from drorch.repository.timefmt import now_ns
from drorch.repository.uploader import PackUploader
from drorch.sources.dirmemo import DirMemo, DirMemoStore
from tests.conftest import Restic, restic_restored_root
from tests.support.nested import nested_source


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = nested_source(tmp_path / "src", subs=3, files=4, repeat=30)
    (root / "empty").write_bytes(b"")
    return root


@pytest.fixture
def tree_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The parent trees each archive reads."""
    reads: list[str] = []
    real = parent_module.parent_nodes

    def counting(repo: Repository, tree_id: str | None, *args: Any) -> dict[str, Any]:
        if tree_id:
            reads.append(tree_id)
        return real(repo, tree_id, *args)

    monkeypatch.setattr(parent_module, "parent_nodes", counting)
    return reads


def _backup(repo: Repository, source: Path, parent: str | None, memo: DirMemo | None
            ) -> tuple[str, DirMemo | None, Archiver]:
    uploader = PackUploader(repo)
    archiver = Archiver(repo, uploader, memo=memo)
    tree = archiver.archive(source, parent)
    repo.save_index(uploader.flush())
    uploader.close()
    save_snapshot(repo, Snapshot(now_ns(), tree, [str(source)]))
    return tree, archiver.memo, archiver


def _source_tree(memo: DirMemo | None) -> str:
    """The source directory's own tree: the root tree also holds the directories above the
    source (``/tmp`` and so on), which other processes change at any time."""
    assert memo is not None
    return memo[""][0]


def _set_xattr(path: Path) -> None:
    try:
        os.setxattr(path, "user.drorch-test", b"v")
    except OSError as err:
        pytest.skip(f"no user xattrs here: {err}")


def _rewrite_keeping_mtime(path: Path) -> None:
    st = path.stat()
    path.write_text("X" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


EDITS: dict[str, Callable[[Path], None]] = {
    "rewrite-deep-file-mtime-put-back": lambda s: _rewrite_keeping_mtime(s / "t1" / "s2" / "f3"),
    "new-file-deep": lambda s: (s / "t2" / "s0" / "new").write_text("new\n"),
    "delete-file": lambda s: (s / "t0" / "s1" / "f0").unlink(),
    "chmod-file": lambda s: (s / "t1" / "s1" / "f1").chmod(0o600),
    "chmod-dir": lambda s: (s / "t2" / "s2").chmod(0o700),
    "xattr-on-file": lambda s: _set_xattr(s / "t0" / "s2" / "f2"),
    "retarget-link": lambda s: ((s / "t0" / "link").unlink(), (s / "t0" / "link").symlink_to("s1/f1")),
    "new-subdir": lambda s: (s / "t1" / "s0" / "deeper").mkdir(),
    "remove-subdir": lambda s: shutil.rmtree(s / "t2" / "s1"),
    "empty-file-grows": lambda s: (s / "empty").write_text("now with content\n"),
    "hardlink-added": lambda s: os.link(s / "t0" / "s0" / "f3", s / "t2" / "f3-link"),
    "mtime-in-year-3000": lambda s: os.utime(s / "t2" / "s2" / "f0", ns=(0, 32503680000 * 10**9)),
    "undecodable-name": lambda s: Path(os.fsdecode(bytes(s / "t1" / "s1") + b"/bad-\xff")).write_text("x"),
}


def test_a_no_change_run_reads_no_parent_tree(tmp_path: Path, source: Path, tree_reads: list[str]) -> None:
    repo = Repository.init(LocalStore(tmp_path / "repo"), b"pw", "test")
    first, memo, _ = _backup(repo, source, None, None)
    assert memo is not None and set(memo) >= {"", "t0", "t1/s2"}
    tree_reads.clear()

    _second, again, archiver = _backup(repo, source, first, memo)

    assert _source_tree(again) == _source_tree(memo) and again == memo
    # only the trees above the source (one per component of its absolute path) were read
    assert len(tree_reads) == len(source.parts) - 1
    assert archiver.stats.files_unmodified == 3 * 3 * 4 + 1 and archiver.stats.bytes_read == 0


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_a_change_gives_the_tree_a_walk_without_memo_gives(tmp_path: Path, source: Path,
                                                            edit: Callable[[Path], None]) -> None:
    repo = Repository.init(LocalStore(tmp_path / "repo"), b"pw", "test")
    first, memo, _ = _backup(repo, source, None, None)
    edit(source)

    with_memo, new_memo, _ = _backup(repo, source, first, memo)
    _without_memo, fresh_memo, _ = _backup(repo, source, first, None)

    assert _source_tree(new_memo) == _source_tree(fresh_memo) != _source_tree(memo)
    assert new_memo == fresh_memo  # the memo recorded either way describes the same walk
    _again, last_memo, archiver = _backup(repo, source, with_memo, new_memo)
    assert _source_tree(last_memo) == _source_tree(new_memo) and archiver.stats.bytes_read == 0


def test_restic_checks_and_restores_what_memo_runs_wrote(tmp_path: Path, source: Path, drorch_key: str,
                                                         restic: Restic, assert_same_tree: Any) -> None:
    path = tmp_path / "repo"
    restic.init(path)
    repo = Repository.open(LocalStore(path), drorch_key.encode(), "test")
    tree, memo, _ = _backup(repo, source, None, None)
    for name, edit in EDITS.items():
        if name not in ("xattr-on-file", "mtime-in-year-3000"):  # restic 0.14 restores neither
            edit(source)
        tree, memo, _ = _backup(repo, source, tree, memo)
    restic.check(path)
    restic("restore", "latest", "--target", str(tmp_path / "out"), repo=path)
    assert_same_tree(source, restic_restored_root(tmp_path / "out", source))


def test_a_file_whose_blob_left_the_index_is_read_again(tmp_path: Path, source: Path) -> None:
    repo = Repository.init(LocalStore(tmp_path / "repo"), b"pw", "test")
    first, memo, _ = _backup(repo, source, None, None)
    assert memo is not None
    lost = memo["t1/s1"][2]["f2"][0]
    repo.index._blobs[DATA].pop(lost)  # as after damage was found and its pack dropped

    _second, again, archiver = _backup(repo, source, first, memo)

    assert _source_tree(again) == _source_tree(memo) and repo.index.has(DATA, lost)
    assert archiver.stats.files_changed == 1 and archiver.stats.bytes_read == len("1/1/2\n" * 30)


def test_a_memo_entry_is_used_only_for_the_tree_it_describes(tmp_path: Path, source: Path,
                                                              tree_reads: list[str]) -> None:
    repo = Repository.init(LocalStore(tmp_path / "repo"), b"pw", "test")
    first, memo, _ = _backup(repo, source, None, None)
    assert memo is not None
    (source / "t0" / "s0" / "f0").write_text("changed\n")
    second, second_memo, _ = _backup(repo, source, first, None)
    tree_reads.clear()

    _third, third_memo, _ = _backup(repo, source, second, memo)  # the memo of `first`, not of `second`

    # the trees that differ from `first` (the source, t0, t0/s0) and those above the source
    # are read; t1 and t2 are as in `first`, so its memo holds for them
    assert _source_tree(third_memo) == _source_tree(second_memo)
    assert len(tree_reads) == len(source.parts) - 1 + 3


def test_the_store_refuses_torn_foreign_and_other_python_memos(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store = DirMemoStore(tmp_path / "memos")
    memo: DirMemo = {"": ("a" * 64, {"f": (1, 2)}, {"f": ["b" * 64]})}
    store.save("r" * 64, memo)
    assert store.load("r" * 64) == memo and store.load("x" * 64) is None and store.load(None) is None

    written = tmp_path / "memos" / f"{'r' * 64}.memo"
    good = written.read_bytes()
    written.write_bytes(good[:-5])  # torn
    assert store.load("r" * 64) is None
    written.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit flipped
    assert store.load("r" * 64) is None
    written.write_bytes(good)
    monkeypatch.setattr("drorch.sources.dirmemo._PYTHON", [sys.version_info[0], sys.version_info[1] + 1])
    assert store.load("r" * 64) is None


def test_the_store_keeps_the_newest_few(tmp_path: Path) -> None:
    store = DirMemoStore(tmp_path / "memos")
    for n in range(5):
        store.save(f"{n}" * 64, {})
        os.utime(tmp_path / "memos" / f"{str(n) * 64}.memo", (n, n))
    store.save("9" * 64, {})
    assert sorted(p.name[0] for p in (tmp_path / "memos").glob("*.memo")) == ["4", "9"]


def test_a_backup_without_a_usable_home_goes_on_without_memos(tmp_path: Path, source: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from drorch.archiver.source import archive_source
    from drorch.policy import Source
    from drorch.ports.progress import NoProgress

    (tmp_path / "home-is-a-file").write_text("")
    monkeypatch.setenv("DRORCH_HOME", str(tmp_path / "home-is-a-file"))
    repo = Repository.init(LocalStore(tmp_path / "repo"), b"pw", "test")
    uploader = PackUploader(repo)
    archived = archive_source(Source(name="s", type="directory", path=source), "m", repo, uploader, None,
                              excludes=[], progress=NoProgress())
    uploader.flush()
    uploader.close()
    assert archived.files_new == 3 * 3 * 4 + 1 and repo.index.has("tree", archived.tree)
