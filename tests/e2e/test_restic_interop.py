"""SPEC §4: drorch writes restic repository format 2, so the stock restic binary is the oracle.

Both directions: what ``drorch apply`` writes, ``restic check --read-data``
accepts and ``restic restore`` reproduces byte for byte with its metadata; what
``restic backup`` writes, ``drorch snapshots`` lists and ``drorch restore``
reproduces.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.restic


def _restic_restore(restic, repo: Path, snapshot: str, into: Path) -> None:
    restic("restore", snapshot, "--target", into, repo=repo)


def test_restic_checks_and_restores_what_drorch_wrote(
        tmp_path, dataset, drorch_env, restic, e2e):
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    result = e2e.apply_ok(policy, drorch_env)
    assert result["files_new"] == len(e2e.regular_files(dataset))
    restic.check(repo, read_data=True)

    [snap] = restic.snapshots(repo)
    assert snap["id"] == result["snapshot"]
    assert snap["paths"] == [str(dataset)]

    config = json.loads(restic("cat", "config", repo=repo).stdout)
    assert config["version"] == 2

    out = tmp_path / "restic-out"
    _restic_restore(restic, repo, "latest", out)
    e2e.assert_same_tree(dataset, e2e.restic_restored_root(out, dataset))


def _change_dataset(src: Path, e2e) -> None:
    """Modify, add, delete, rename, chmod, retarget a symlink: an ordinary day's changes."""
    big = src / "big.bin"
    with open(big, "ab") as fh:
        fh.write(e2e.random_bytes(300_000, "append"))
    (src / "text" / "readme.txt").write_bytes(b"rewritten readme\n")
    (src / "new-file.bin").write_bytes(e2e.random_bytes(1_500_000, "new"))
    (src / "nested" / "a" / "b" / "new dir").mkdir()
    (src / "nested" / "a" / "b" / "new dir" / "n.txt").write_bytes(b"new in new dir\n")
    (src / "small.bin").unlink()
    shutil.rmtree(src / "nested" / "a" / "b" / "c")
    os.rename(src / "with space.txt", src / "renamed with space.txt")
    os.chmod(src / "run.sh", 0o700)
    os.unlink(src / "link-to-readme")
    os.symlink("text/notes.md", src / "link-to-readme")
    (src / "empty-dir-2").mkdir()
    e2e.stamp_mtimes(src, base_ns=1_700_000_000_987_654_321)


def test_incremental_apply_stays_restic_readable(tmp_path, dataset, drorch_env, restic, e2e):
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    first = e2e.apply_ok(policy, drorch_env)
    _change_dataset(dataset, e2e)
    second = e2e.apply_ok(policy, drorch_env)
    assert second["snapshot"] != first["snapshot"]
    assert second["files_new"] >= 2 and second["files_changed"] >= 1, second

    restic.check(repo, read_data=True)
    snaps = restic.snapshots(repo)
    assert {s["id"] for s in snaps} == {first["snapshot"], second["snapshot"]}
    newest = max(snaps, key=lambda s: s["time"])
    assert newest["id"] == second["snapshot"]

    out = tmp_path / "restic-out"
    _restic_restore(restic, repo, "latest", out)
    e2e.assert_same_tree(dataset, e2e.restic_restored_root(out, dataset))


@pytest.mark.parametrize("repo_version", ["1", "2"])
def test_drorch_lists_and_restores_what_restic_wrote(
        tmp_path, dataset, drorch_env, restic, e2e, repo_version):
    repo = tmp_path / "restic-repo"
    restic.init(repo, repo_version)
    restic("backup", dataset, repo=repo)
    [made] = restic.snapshots(repo)
    snapshot_id = made["id"]

    policy = e2e.make_policy(tmp_path, dataset, repo)
    listing = e2e.drorch_json("snapshots", policy, env=drorch_env)
    assert [s["id"] for s in listing["local"]] == [snapshot_id]
    assert listing["local"][0]["paths"] == [str(dataset)]

    human = e2e.run_drorch("snapshots", policy, env=drorch_env)
    assert human.returncode == 0, e2e.describe(human)
    assert snapshot_id[:8] in human.stdout

    out = tmp_path / "drorch-out"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", out, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    e2e.assert_same_tree(dataset, out)

    by_id = tmp_path / "drorch-out-by-id"
    proc = e2e.run_drorch("restore", policy, snapshot_id[:10], "--to", by_id, "--quiet",
                          env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    e2e.assert_same_tree(dataset, by_id)


def test_drorch_apply_into_a_restic_repository(tmp_path, dataset, drorch_env, restic, e2e):
    """A repository restic created (format 2) takes drorch snapshots next to restic's own."""
    repo = tmp_path / "restic-repo"
    restic.init(repo, "2")
    restic("backup", dataset, repo=repo)
    policy = e2e.make_policy(tmp_path, dataset, repo)
    result = e2e.apply_ok(policy, drorch_env)
    # restic's blobs use other chunk boundaries, but small files are one blob either way
    assert result["files_new"] == len(e2e.regular_files(dataset))
    restic.check(repo, read_data=True)
    assert len(restic.snapshots(repo)) == 2
    out = tmp_path / "restic-out"
    _restic_restore(restic, repo, result["snapshot"], out)
    e2e.assert_same_tree(dataset, e2e.restic_restored_root(out, dataset))
