"""Packs written by restore's helper processes (drorch.restore.packs, drorch.restore.helper).

The thresholds are set to 0 so that even these small snapshots go to the helpers.
The backup is made by ``drorch apply``; each test checks the restored tree against
the source (content, modes, times, links), or the damage and faults it injects.
"""

from __future__ import annotations

import os
import random
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import drorch
from drorch.helpers.pool import Helpers
from drorch.ports.errors import IntegrityError, StoreError, StoreFull
from drorch.restore import packs
from tests.support.helper_faults import one_helper_dies


@pytest.fixture
def forced(monkeypatch: pytest.MonkeyPatch, drorch_key: str) -> None:
    monkeypatch.setattr(packs, "HELPERS_AFTER_BLOBS", 0)
    monkeypatch.setattr(packs, "HELPER_BLOBS_PER_PACK", 0)
    monkeypatch.setenv("DRORCH_KEY", drorch_key)


@pytest.fixture
def backed_up(tmp_path: Path, drorch_env: dict[str, str], e2e: Any) -> tuple[Path, Path]:
    """Small files in nested directories, twins, hard links, a symlink, an empty file and
    two files of several chunks (one random, one compressible)."""
    rng = random.Random(11)
    src = tmp_path / "src"
    for i in range(120):
        folder = src / f"d{i % 5}" / f"e{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        body = b"twin\n" * 300 if i % 30 == 0 else rng.randbytes(rng.randrange(1, 9000))
        (folder / f"f{i}.txt").write_bytes(body)
    (src / "empty").write_bytes(b"")
    (src / "random.bin").write_bytes(e2e.random_bytes(24 * 1024 * 1024, "helpers"))  # 2 packs
    (src / "text.log").write_bytes(b"".join(b"line %d of a log\n" % i for i in range(300_000)))
    os.link(src / "d0" / "e0" / "f0.txt", src / "hardlink.txt")
    (src / "link").symlink_to("d1/e1/f1.txt")
    e2e.stamp_mtimes(src)
    policy = e2e.make_policy(tmp_path, src, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    return src, policy


def _restore(policy: Path, to: Path) -> Any:
    loaded = drorch.load_policy(policy)
    _, stats = drorch.restore(loaded, drorch.key_source(loaded.encryption), "latest", to)
    return stats



def test_helpers_restore_every_pack_byte_identical(tmp_path: Path, backed_up: tuple[Path, Path],
                                                   forced: None, e2e: Any) -> None:
    src, policy = backed_up
    stats = _restore(policy, tmp_path / "to")

    assert stats.blobs_by_helpers > 120
    e2e.assert_same_tree(src, tmp_path / "to")
    assert os.stat(tmp_path / "to" / "hardlink.txt").st_ino == os.stat(tmp_path / "to/d0/e0/f0.txt").st_ino


def test_a_helper_killed_mid_restore_loses_nothing(tmp_path: Path, backed_up: tuple[Path, Path],
                                                   forced: None, e2e: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packs, "Helpers", one_helper_dies(kill_at=1))  # its first pack is lost
    src, policy = backed_up
    stats = _restore(policy, tmp_path / "to")

    e2e.assert_same_tree(src, tmp_path / "to")
    assert stats.damaged == []


@pytest.mark.timeout(120)  # a slot kept by a garbled answer would block the restore for ever
def test_garbled_answers_are_written_again_here(tmp_path: Path, backed_up: tuple[Path, Path],
                                                 forced: None, e2e: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    class Garbles(Helpers):
        """Every answer comes back as something that is not a flag per blob."""

        def __init__(self, module: str, key: Any, count: int, on_results: Any, on_lost: Any,
                     **kwargs: Any) -> None:
            super().__init__(module, key, count, lambda batch, _answer: on_results(batch, ["?"]),
                             on_lost, **kwargs)

    monkeypatch.setattr(packs, "Helpers", Garbles)
    monkeypatch.setattr(packs, "SPARE_SLOTS_LOCAL", -1)  # one slot for two helpers, and two packs
    src, policy = backed_up
    stats = _restore(policy, tmp_path / "to")

    assert stats.blobs_by_helpers == 0
    e2e.assert_same_tree(src, tmp_path / "to")


def test_helpers_that_cannot_start_leave_the_packs_to_threads(
        tmp_path: Path, backed_up: tuple[Path, Path], forced: None, e2e: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    src, policy = backed_up
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    stats = _restore(policy, tmp_path / "to")

    assert stats.blobs_by_helpers == 0
    e2e.assert_same_tree(src, tmp_path / "to")


def test_helpers_that_cannot_start_are_tried_once_and_hold_nothing(
        tmp_path: Path, backed_up: tuple[Path, Path], forced: None, e2e: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Tried before the walk and failed: not tried again after it, and their shared slots
    (a memory file each restore would otherwise keep open) are closed at once."""
    tries: list[int] = []
    closed: list[int] = []
    real_close = packs.SharedSlots.close

    def cannot_start(*_args: Any, **_kwargs: Any) -> None:
        tries.append(1)
        raise OSError(24, "Too many open files")

    def close(self: packs.SharedSlots) -> None:
        closed.append(self.fd)
        real_close(self)

    monkeypatch.setattr(packs, "Helpers", cannot_start)
    monkeypatch.setattr(packs.SharedSlots, "close", close)
    src, policy = backed_up
    stats = _restore(policy, tmp_path / "to")

    assert tries == [1] and len(closed) == 1
    assert stats.blobs_by_helpers == 0
    e2e.assert_same_tree(src, tmp_path / "to")


def test_damage_found_by_a_helper_is_named_and_set_aside(tmp_path: Path, crafted: Any,
                                                         forced: None) -> None:
    bad = crafted.file("bad.txt", b"bad\n" * 40_000)
    crafted.damage_blob(bad["content"][1])
    snap = crafted.snapshot([bad, crafted.file("good.txt", b"good\n" * 40_000)])
    policy = drorch.load_policy(crafted.policy)
    with pytest.raises(IntegrityError) as raised:
        drorch.restore(policy, drorch.key_source(policy.encryption), snap[:12], tmp_path / "to")

    assert raised.value.exit_code == 3
    assert [d["path"] for d in raised.value.damaged] == ["bad.txt"]
    assert (tmp_path / "to" / "good.txt").read_bytes() == b"good\n" * 40_000
    assert not (tmp_path / "to" / "bad.txt").exists()
    assert (tmp_path / "to" / "bad.txt.drorch-damaged").exists()


def test_metadata_a_helper_cannot_set_is_a_warning(tmp_path: Path, crafted: Any, forced: None) -> None:
    """A file of one blob is made, written and given its metadata by the helper that writes
    the blob; what it cannot set comes back to the restore's warnings, as from a thread."""
    odd = crafted.file("odd.txt", b"odd\n")
    odd["mtime"] = "yesterday"
    fine = crafted.file("fine.txt", b"fine\n")
    fine["mode"] = 0o640
    snap = crafted.snapshot([odd, fine])
    policy = drorch.load_policy(crafted.policy)
    _, stats = drorch.restore(policy, drorch.key_source(policy.encryption), snap[:12], tmp_path / "to")

    assert stats.blobs_by_helpers == 2
    assert (tmp_path / "to" / "odd.txt").read_bytes() == b"odd\n"
    [warning] = stats.warnings
    assert warning.startswith("odd.txt: could not set its metadata")
    assert os.stat(tmp_path / "to" / "fine.txt").st_mode & 0o777 == 0o640


def test_helpers_start_during_the_walk_and_stop_when_the_plan_needs_none(
        tmp_path: Path, crafted: Any, monkeypatch: pytest.MonkeyPatch, drorch_key: str) -> None:
    """Helpers start before the walk when the repository holds enough small blobs (their
    start-up then overlaps it); a snapshot that needs fewer stops them again, unused."""
    monkeypatch.setattr(packs, "HELPERS_AFTER_BLOBS", 5)
    monkeypatch.setattr(packs, "HELPER_BLOBS_PER_PACK", 0)
    monkeypatch.setenv("DRORCH_KEY", drorch_key)
    started: list[list[int]] = []

    class Counted(Helpers):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self.pids)

    monkeypatch.setattr(packs, "Helpers", Counted)
    many = crafted.snapshot([crafted.file(f"f{i}.txt", b"file %d\n" % i) for i in range(6)])
    one = crafted.snapshot([crafted.file("only.txt", b"only\n")])
    policy = drorch.load_policy(crafted.policy)
    keys = drorch.key_source(policy.encryption)

    _, stats = drorch.restore(policy, keys, one[:12], tmp_path / "one")
    assert stats.blobs_by_helpers == 0 and len(started) == 1, "helpers were not started ahead"
    assert all(not os.path.exists(f"/proc/{pid}") for pid in started[0]), "helpers left running"
    assert (tmp_path / "one" / "only.txt").read_bytes() == b"only\n"

    _, stats = drorch.restore(policy, keys, many[:12], tmp_path / "many")
    assert stats.blobs_by_helpers == 6 and len(started) == 2, "started twice, or not used"
    assert (tmp_path / "many" / "f5.txt").read_bytes() == b"file 5\n"


def test_a_full_disk_under_helpers_keeps_only_complete_files(
        tmp_path: Path, backed_up: tuple[Path, Path], forced: None, mount_fs: Any, e2e: Any) -> None:
    src, policy = backed_up
    with mount_fs("tmpfs", "size=3m") as disk:
        with pytest.raises(StoreFull) as raised:
            _restore(policy, disk / "to")
        assert "out of space" in str(raised.value) and "restored completely and kept" in str(raised.value)
        want, got = e2e.digests(src), e2e.digests(disk / "to")
        assert len(got) < len(want)
        assert {rel for rel, digest in got.items() if want.get(rel) != digest} == set()


def test_a_store_that_fails_under_helpers_fails_the_restore_without_hanging(
        tmp_path: Path, backed_up: tuple[Path, Path], forced: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pack read into a shared slot that fails must give its slot back: with one slot,
    the next pack waited for it for ever, and the restore never ended."""
    from drorch.providers.local import LocalStore

    monkeypatch.setattr(packs, "SPARE_SLOTS_LOCAL", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # one helper, so one slot

    def unreadable(self: LocalStore, name: str, offset: int, into: memoryview) -> int:
        raise StoreError(f"cannot read {name} in {self.root}: Input/output error")

    monkeypatch.setattr(LocalStore, "get_into", unreadable)
    _, policy = backed_up
    outcome: list[BaseException] = []
    restoring = threading.Thread(target=lambda: _catch(outcome, _restore, policy, tmp_path / "to"))
    restoring.start()
    restoring.join(timeout=60)

    assert not restoring.is_alive(), "the restore hung on a slot a failed read never gave back"
    assert len(outcome) == 1 and isinstance(outcome[0], StoreError) and "Input/output" in str(outcome[0])


def _catch(outcome: list[BaseException], job: Any, *args: Any) -> None:
    try:
        job(*args)
    except BaseException as err:  # noqa: BLE001 - the test looks at it
        outcome.append(err)
