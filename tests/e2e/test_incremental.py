"""Incremental applies: unchanged files are not read again, changed ones upload only new chunks."""

from __future__ import annotations

import os

import pytest


def test_no_change_rerun_reads_nothing(tmp_path, dataset, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo")
    first = e2e.apply_ok(policy, drorch_env)
    files = len(e2e.regular_files(dataset))
    assert (first["files_new"], first["files_changed"], first["files_unmodified"]) == (files, 0, 0)
    assert first["bytes_read"] == sum(p.stat().st_size for p in e2e.regular_files(dataset))

    second = e2e.apply_ok(policy, drorch_env)
    assert (second["files_new"], second["files_changed"], second["files_unmodified"]) == (
        0, 0, files), second
    assert second["bytes_read"] == 0, second
    # only directory metadata (access times) can differ: a few tree blobs at most
    assert second["bytes_added"] < 64 * 1024, second
    assert second["snapshot"] != first["snapshot"]


@pytest.fixture
def big_source(tmp_path, e2e):
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(e2e.random_bytes(16 * e2e.MiB, "sixteen"))
    (src / "other.txt").write_bytes(b"unchanged\n")
    return src


def test_append_to_big_file_adds_only_the_last_chunks(tmp_path, big_source, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, big_source, tmp_path / "repo")
    first = e2e.apply_ok(policy, drorch_env)
    assert first["bytes_added"] >= 16 * e2e.MiB

    big = big_source / "big.bin"
    with open(big, "ab") as fh:
        fh.write(e2e.random_bytes(64 * 1024, "tail"))
    second = e2e.apply_ok(policy, drorch_env)
    assert (second["files_changed"], second["files_unmodified"]) == (1, 1), second
    assert second["bytes_read"] == big.stat().st_size, second
    # content-defined chunks: everything before the last cut point is already stored
    assert second["bytes_added"] < big.stat().st_size // 4, second
    assert second["bytes_added"] >= 64 * 1024, second


def test_insert_in_the_middle_of_big_file_adds_few_chunks(tmp_path, big_source, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, big_source, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    big = big_source / "big.bin"
    data = big.read_bytes()
    middle = len(data) // 2
    big.write_bytes(data[:middle] + b"inserted bytes shift everything after them" + data[middle:])
    second = e2e.apply_ok(policy, drorch_env)
    assert second["files_changed"] == 1, second
    assert second["bytes_added"] < big.stat().st_size // 4, second


def test_touched_file_is_reread_but_adds_nothing(tmp_path, dataset, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    big = dataset / "big.bin"
    os.utime(big, ns=(big.stat().st_atime_ns, big.stat().st_mtime_ns + 1_000_000_000))
    second = e2e.apply_ok(policy, drorch_env)
    assert second["files_changed"] == 1, second
    assert second["bytes_read"] == big.stat().st_size, second
    assert second["bytes_added"] < 64 * 1024, second  # same content: only tree blobs


def test_restore_after_incremental_changes(tmp_path, dataset, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo")
    first = e2e.apply_ok(policy, drorch_env)
    before = e2e.tree_state(dataset)
    (dataset / "text" / "readme.txt").write_bytes(b"changed\n")
    (dataset / "added.bin").write_bytes(e2e.random_bytes(900_000, "added"))
    (dataset / "empty.txt").unlink()
    e2e.stamp_mtimes(dataset, base_ns=1_650_000_000_000_000_001)
    e2e.apply_ok(policy, drorch_env)

    latest = tmp_path / "latest"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", latest, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    e2e.assert_same_tree(dataset, latest)

    older = tmp_path / "older"
    proc = e2e.run_drorch("restore", policy, first["snapshot"], "--to", older, "--quiet",
                          env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    e2e.assert_same_tree(before, older)
