"""A large file cut on several threads gets exactly the chunks one thread would cut.

If the cuts differed, a file backed up both ways (an old snapshot, a new one)
would stop deduplicating; and a chunk missed or doubled would lose data. Each
test compares with sequential chunking (``chunker.chunks``) of the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from drorch.archiver import archiver as archiver_module
from drorch.archiver import segments
from drorch.archiver.archiver import Archiver
from drorch.archiver.chunker import MAX_CHUNK, chunks
from drorch.archiver.segments import SEGMENT, parallel_cuts
from drorch.providers.local import LocalStore
from drorch.repository.repository import Repository
from drorch.repository.snapshot import Snapshot, save_snapshot
from drorch.repository.timefmt import now_ns
from drorch.repository.tree import decode_tree
from drorch.repository.uploader import PackUploader
from tests.conftest import Restic, restic_restored_root

MIB = 1024 * 1024
SMALL = 2 * MAX_CHUNK  # a segment size that keeps the test files small


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(segments, "SEGMENT", SMALL)
    monkeypatch.setattr(archiver_module, "PARALLEL_FROM", 2 * SMALL)
    return SMALL


def _file(path: Path, size: int, seed: int = 3) -> Path:
    """Random stretches, text and zeros: long runs of zeros cut at MAX_CHUNK, text and
    random bytes by content."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randrange(3, 12)).hex().encode() for _ in range(500)]
    with path.open("wb") as out:
        written = 0
        while written < size:
            kind, n = rng.randrange(3), min(rng.randrange(1, 24) * MIB, size - written)
            if kind == 0:
                piece = rng.randbytes(n)
            elif kind == 1:
                piece = (b" ".join(rng.choices(words, k=n // 6)) + b"\n" * n)[:n]
            else:
                piece = bytes(n)
            out.write(piece)
            written += n
    return path


def _sequential(path: Path) -> list[tuple[int, int]]:
    cuts, offset = [], 0
    with path.open("rb", buffering=0) as stream:
        for chunk in chunks(stream, path.stat().st_size):
            cuts.append((offset, len(chunk)))
            offset += len(chunk)
    return cuts


def _parallel(path: Path, size: int | None = None, ahead: int = 3) -> list[tuple[int, int]]:
    fd = os.open(path, os.O_RDONLY)
    try:
        with ThreadPoolExecutor(ahead) as pool:
            return list(parallel_cuts(fd, path.stat().st_size if size is None else size, pool.submit, ahead))
    finally:
        os.close(fd)


def test_cuts_equal_one_threads(tmp_path: Path) -> None:
    path = _file(tmp_path / "big", 2 * SEGMENT + 5 * MIB + 17)
    expected = _sequential(path)
    assert _parallel(path) == expected
    assert sum(length for _offset, length in expected) == path.stat().st_size


@pytest.mark.parametrize("segments_in_file", [2, 3.3, 5])
def test_cuts_equal_one_threads_for_any_number_of_segments(tmp_path: Path, small_segments: int,
                                                           segments_in_file: float) -> None:
    path = _file(tmp_path / "big", int(segments_in_file * small_segments) - 1, seed=int(segments_in_file))
    assert _parallel(path) == _sequential(path)


def test_chains_that_do_not_meet_are_cut_again_from_the_last_right_cut(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_segments: int) -> None:
    """With no overlap, a segment's chain rarely meets the one before it: every segment is
    then cut again on the stitching thread, and the result must still be the same."""
    path = _file(tmp_path / "big", 3 * small_segments + 3 * MIB, seed=11)
    recut: list[int] = []
    real = segments.cut_range

    def counting(fd: int, start: int, stop: int | None) -> Any:
        if start % small_segments:
            recut.append(start)
        return real(fd, start, stop)

    monkeypatch.setattr(segments, "OVERLAP", 0)
    monkeypatch.setattr(segments, "cut_range", counting)
    assert _parallel(path) == _sequential(path)
    assert recut, "the fallback was not exercised"


def test_a_file_that_grew_is_read_to_its_end_and_one_that_shrank_to_where_it_ends(
        tmp_path: Path, small_segments: int) -> None:
    path = _file(tmp_path / "big", 4 * small_segments)
    assert _parallel(path, size=2 * small_segments) == _sequential(path)  # listed smaller: it grew
    os.truncate(path, small_segments + MAX_CHUNK + 12345)
    assert _parallel(path, size=4 * small_segments) == _sequential(path)  # listed larger: it shrank


def test_stopping_early_waits_for_running_cut_tasks(tmp_path: Path, small_segments: int) -> None:
    """The caller closes the descriptor when it stops; no task may still be reading it."""
    path = _file(tmp_path / "big", 4 * small_segments)
    fd = os.open(path, os.O_RDONLY)
    with ThreadPoolExecutor(2) as pool:
        started: list[Any] = []

        def submit(task: Any) -> Any:
            delay = 0.3 * len(started)  # each later task is still running when the caller stops

            def slow() -> Any:
                time.sleep(delay)
                return task()

            started.append(pool.submit(slow))
            return started[-1]

        cuts: Iterator[tuple[int, int]] = parallel_cuts(fd, 4 * small_segments, submit, 2)
        next(cuts)
        cuts.close()  # type: ignore[attr-defined]
        assert all(f.done() for f in started)
    os.close(fd)


def test_archived_large_file_has_the_sequential_blobs_and_restores(
        tmp_path: Path, drorch_key: str, restic: Restic, assert_same_tree: Any, small_segments: int) -> None:
    source = tmp_path / "src"
    source.mkdir()
    path = _file(source / "disk.img", 3 * small_segments + 7 * MIB, seed=5)
    repo_path = tmp_path / "repo"
    restic.init(repo_path)
    repo = Repository.open(LocalStore(repo_path), drorch_key.encode(), "test")
    uploader = PackUploader(repo)
    tree = Archiver(repo, uploader, helpers=0).archive(source, None)
    repo.save_index(uploader.flush())
    uploader.close()
    save_snapshot(repo, Snapshot(now_ns(), tree, [str(source)]))

    node = _node(repo, tree, [*source.parts[1:], "disk.img"])
    with path.open("rb", buffering=0) as stream:
        expected = [hashlib.sha256(chunk).hexdigest() for chunk in chunks(stream, path.stat().st_size)]
    assert node["content"] == expected and node["size"] == path.stat().st_size
    restic.check(repo_path)
    restic("restore", "latest", "--target", str(tmp_path / "out"), repo=repo_path)
    assert_same_tree(source, restic_restored_root(tmp_path / "out", source))


def _node(repo: Repository, tree_id: str, names: list[str]) -> dict[str, Any]:
    for name in names:
        node = next(n for n in decode_tree(repo.load_blob("tree", tree_id)) if n["name"] == name)
        tree_id = node.get("subtree", "")
    return node


def test_a_read_error_while_cutting_skips_the_file_and_keeps_the_rest(
        tmp_path: Path, drorch_key: str, restic: Restic, small_segments: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An I/O error in one segment's cut task: that file is skipped with its reason, as an
    unreadable file always is; the other files are stored and the repository stays sound."""
    source = tmp_path / "src"
    source.mkdir()
    _file(source / "bad.img", 3 * small_segments, seed=8)
    kept = _file(source / "good.img", 3 * small_segments, seed=9)
    bad_inode = (source / "bad.img").stat().st_ino
    real = segments.region_at

    def failing(fd: int, offset: int) -> Any:
        if os.fstat(fd).st_ino == bad_inode and offset >= small_segments:
            raise OSError(5, "Input/output error")
        return real(fd, offset)

    monkeypatch.setattr(segments, "region_at", failing)
    repo_path = tmp_path / "repo"
    restic.init(repo_path)
    repo = Repository.open(LocalStore(repo_path), drorch_key.encode(), "test")
    uploader = PackUploader(repo)
    archiver = Archiver(repo, uploader, helpers=0)
    tree = archiver.archive(source, None)
    repo.save_index(uploader.flush())
    uploader.close()
    save_snapshot(repo, Snapshot(now_ns(), tree, [str(source)]))

    assert len(archiver.stats.skipped) == 1 and "bad.img" in archiver.stats.skipped[0]
    assert "Input/output error" in archiver.stats.skipped[0]
    restic.check(repo_path)
    restic("restore", "latest", "--target", str(tmp_path / "out"), repo=repo_path)
    restored = restic_restored_root(tmp_path / "out", source)
    assert sorted(p.name for p in restored.iterdir()) == ["good.img"]
    assert (restored / "good.img").read_bytes() == kept.read_bytes()
