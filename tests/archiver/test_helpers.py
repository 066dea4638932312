"""Small files read and sealed by helper processes (drorch.archiver.helper, drorch.helpers).

Every test ends with stock restic: ``check --read-data`` and a byte-identical
restore of what the helpers (or the threads that took over from them) stored.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drorch.archiver import smallfiles
from drorch.archiver.archiver import Archiver
from drorch.archiver.helper import seal_file
from drorch.helpers.pool import Helpers
from drorch.providers.local import LocalStore
from drorch.repository.crypto import Key
from drorch.repository.repository import Repository, decompress
from drorch.repository.snapshot import Snapshot, save_snapshot
from drorch.repository.timefmt import now_ns
from drorch.repository.uploader import PackUploader
from tests.conftest import Restic, restic_restored_root
from tests.support.helper_faults import one_helper_dies

SMALL_FILES = 300


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """Small files in nested directories, a few twins and an empty one, and one large file."""
    rng = random.Random(7)
    root = tmp_path / "src"
    for i in range(SMALL_FILES - 1):
        folder = root / f"d{i % 7}" / f"e{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        body = b"same twin content\n" * 50 if i % 50 == 0 else rng.randbytes(rng.randrange(1, 9000))
        (folder / f"f{i}.txt").write_bytes(body)
    (root / "empty").write_bytes(b"")
    (root / "large.bin").write_bytes(rng.randbytes(3 * 1024 * 1024))
    return root


@pytest.fixture
def repo(tmp_path: Path, drorch_key: str, restic: Restic) -> tuple[Repository, Path]:
    path = tmp_path / "repo"
    restic.init(path)
    return Repository.open(LocalStore(path), drorch_key.encode(), "test"), path


def _backup(repo: Repository, source: Path, **options: Any) -> Archiver:
    uploader = PackUploader(repo)
    archiver = Archiver(repo, uploader, **options)
    tree = archiver.archive(source, None)
    packs = uploader.flush()
    repo.save_index(packs)
    uploader.close()
    save_snapshot(repo, Snapshot(now_ns(), tree, [str(source)]))
    archiver.packs = packs  # type: ignore[attr-defined]  # for the tests' own counting
    return archiver


def _assert_restic_restores(restic: Restic, repo_path: Path, source: Path, tmp_path: Path,
                            assert_same_tree: Any) -> None:
    restic.check(repo_path)
    restic("restore", "latest", "--target", str(tmp_path / "out"), repo=repo_path)
    assert_same_tree(source, restic_restored_root(tmp_path / "out", source))


def test_helpers_store_every_small_file_once(repo: tuple[Repository, Path], source: Path, tmp_path: Path,
                                             restic: Restic, assert_same_tree: Any) -> None:
    repository, path = repo
    archiver = _backup(repository, source, helpers=2, helpers_after=0)

    assert archiver.stats.files_by_helpers == SMALL_FILES  # the large file is the threads'
    data_blobs = [blob.id for blobs in archiver.packs.values()  # type: ignore[attr-defined]
                  for blob in blobs if blob.type == "data"]
    assert len(data_blobs) == len(set(data_blobs)), "twins sealed by two helpers were packed twice"
    _assert_restic_restores(restic, path, source, tmp_path, assert_same_tree)


def test_a_helper_killed_mid_backup_loses_nothing(repo: tuple[Repository, Path], source: Path, tmp_path: Path,
                                                  restic: Restic, assert_same_tree: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smallfiles, "Helpers", one_helper_dies(kill_at=2))
    repository, path = repo
    archiver = _backup(repository, source, helpers=2, helpers_after=0)

    assert archiver.stats.files_new == SMALL_FILES + 1
    assert archiver.stats.files_by_helpers <= SMALL_FILES - smallfiles.BATCH_FILES  # one batch lost
    assert archiver.stats.skipped == []
    _assert_restic_restores(restic, path, source, tmp_path, assert_same_tree)


def test_helpers_that_cannot_start_leave_the_work_to_threads(
        repo: tuple[Repository, Path], source: Path, tmp_path: Path, restic: Restic,
        assert_same_tree: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    notes: list[str] = []

    class Notes:
        def start(self, *args: Any, **kwargs: Any) -> None: ...
        def advance(self, *args: Any, **kwargs: Any) -> None: ...
        def finish(self) -> None: ...
        def note(self, message: str) -> None:
            notes.append(message)

    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    repository, path = repo
    archiver = _backup(repository, source, helpers=2, helpers_after=0, progress=Notes())

    assert archiver.stats.files_by_helpers == 0
    assert any("helper processes did not start" in note for note in notes), notes
    _assert_restic_restores(restic, path, source, tmp_path, assert_same_tree)


def test_helpers_get_the_key_on_stdin_and_no_secret_in_their_environment(
        drorch_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRORCH_KEY", drorch_key)
    key = Key.random()
    helpers: Helpers[object] = Helpers("drorch.archiver.helper", key, 1,
                                       lambda batch, results: None, lambda batch: None)
    try:
        pid = helpers.pids[0]
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        for secret in (drorch_key.encode(), key.encrypt.hex().encode()):
            assert secret not in environ and secret not in argv
        assert b"drorch.archiver.helper" in argv
    finally:
        helpers.close()


def test_seal_file_answers_for_each_kind_of_file(tmp_path: Path) -> None:
    key = Key.random()
    text = tmp_path / "text"
    text.write_bytes(b"hello helper\n" * 100)

    kind, blob_id, sealed, uncompressed_length, plain_length, _ = seal_file(key, str(text), 1300)
    assert (kind, plain_length, uncompressed_length) == ("blob", 1300, 1300)
    assert blob_id == hashlib.sha256(text.read_bytes()).hexdigest()
    assert decompress(key.open(sealed), uncompressed_length) == text.read_bytes()
    assert seal_file(key, str(text), 10) == ("grew",)
    (tmp_path / "empty").write_bytes(b"")
    assert seal_file(key, str(tmp_path / "empty"), 0) == ("empty",)
    assert seal_file(key, str(tmp_path / "gone"), 5)[:2] == ("error", 2)


def test_helpers_that_half_start_leave_no_process_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def second_fails(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        if started:
            raise OSError(24, "Too many open files")
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", second_fails)
    with pytest.raises(OSError):
        Helpers("drorch.archiver.helper", Key.random(), 2, lambda batch, results: None, lambda batch: None)
    assert started and started[0].poll() is not None  # killed and reaped, not left waiting for input
