from __future__ import annotations

from pathlib import Path

from drorch.archiver.archiver import Archiver
from drorch.repository.check import Checker
from drorch.repository.pack import DATA
from drorch.repository.prune import forget, prune, used_blobs
from drorch.repository.repository import Repository
from drorch.repository.snapshot import Snapshot, load_snapshots, save_snapshot
from drorch.repository.timefmt import now_ns
from drorch.repository.uploader import PackUploader
from drorch.restore.restorer import Restorer


def _backup(repo: Repository, source: Path) -> Snapshot:
    uploader = PackUploader(repo)
    tree = Archiver(repo, uploader).archive(source, None)
    repo.save_index(uploader.flush())
    uploader.close()
    snapshot = Snapshot(now_ns(), tree, [str(source)])
    save_snapshot(repo, snapshot)
    return snapshot


def test_prune_deletes_only_what_no_live_snapshot_uses(repo: Repository, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "kept.bin").write_bytes(b"k" * 1000 + bytes(range(256)) * 10)
    old = _backup(repo, source)
    (source / "gone.bin").write_bytes(bytes(range(256)) * 4000)
    middle = _backup(repo, source)
    (source / "gone.bin").unlink()
    newest = _backup(repo, source)

    forget(repo, [old, middle])
    report = prune(repo)

    assert report.packs_deleted >= 1
    assert [s.id for s in load_snapshots(repo)] == [newest.id]
    live = used_blobs(repo, [newest])
    assert all(repo.index.has(kind, blob) for kind, blob in live)
    assert Checker(repo).run(read_data=True).ok
    out = tmp_path / "out"
    Restorer(repo).restore(newest.tree, out, strip=source.parts[1:])
    assert (out / "kept.bin").read_bytes() == (source / "kept.bin").read_bytes()
    assert not (out / "gone.bin").exists()


def test_prune_without_forgotten_snapshots_deletes_nothing(repo: Repository, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a").write_bytes(b"a" * 100)
    _backup(repo, source)
    before = repo.index.packs()
    assert prune(repo).packs_deleted == 0
    assert repo.index.packs().keys() == before.keys()
    assert any(b.type == DATA for blobs in before.values() for b in blobs)
