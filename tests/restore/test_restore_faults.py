"""Restore onto something that is not a directory, onto a full or read-only disk: one clear
sentence, the right exit code, and nothing left that looks complete but is not."""

from __future__ import annotations

import os
import subprocess

import pytest


def _source(root, e2e, big_files=6, small_files=40):
    root.mkdir(parents=True)
    for i in range(big_files):
        (root / f"big{i}.bin").write_bytes(e2e.random_bytes(1024 * 1024, f"fault-{i}"))
    (root / "sub").mkdir()
    for i in range(small_files):
        (root / "sub" / f"s{i:02}.txt").write_bytes(f"small file {i}\n".encode() * 50)
    return root



@pytest.fixture
def backed_up(tmp_path, drorch_env, e2e):
    src = _source(tmp_path / "src", e2e)
    policy = e2e.make_policy(tmp_path, src, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    return src, policy


@pytest.mark.parametrize("to_kind", ["file", "below-a-file"])
def test_directory_snapshot_onto_a_file_is_refused(tmp_path, backed_up, drorch_env, e2e, to_kind):
    _, policy = backed_up
    existing = tmp_path / "existing.txt"
    existing.write_bytes(b"keep\n")
    to = existing if to_kind == "file" else existing / "sub"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", to, "--quiet", env=drorch_env)
    e2e.assert_one_error(proc, 2, "not a directory")
    assert existing.read_bytes() == b"keep\n"


@pytest.mark.parametrize("options, words", [
    pytest.param("size=3m", "out of space", id="bytes"),
    pytest.param("size=64m,nr_inodes=24", "out of space", id="inodes"),
])
def test_full_disk_keeps_only_complete_files(tmp_path, backed_up, drorch_env, e2e, mount_fs, options, words):
    src, policy = backed_up
    with mount_fs("tmpfs", options) as disk:
        to = disk / "to"
        proc = e2e.run_drorch("restore", policy, "latest", "--to", to, "--quiet", env=drorch_env)
        sentence = e2e.assert_one_error(proc, 1, words, str(to))
        assert "files were restored completely and kept" in sentence
        want, got = e2e.digests(src), e2e.digests(to) if to.exists() else {}
        assert len(got) < len(want), "the disk was meant to fill"
        wrong = {rel for rel, digest in got.items() if want.get(rel) != digest}
        assert not wrong, f"files left that look complete but are not: {sorted(wrong)}"


def test_read_only_disk(tmp_path, backed_up, drorch_env, e2e, mount_fs):
    _, policy = backed_up
    with mount_fs("tmpfs", "size=8m") as disk:
        (disk / "to").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        proc = e2e.run_drorch("restore", policy, "latest", "--to", disk / "to", "--quiet", env=drorch_env)
        e2e.assert_one_error(proc, 1, "read-only")


@pytest.fixture
def image_backup(tmp_path, drorch_env, e2e):
    image = tmp_path / "disk.img"
    image.write_bytes(e2e.random_bytes(6 * 1024 * 1024, "image"))
    policy = tmp_path / "policy.yaml"
    e2e.make_policy(tmp_path, tmp_path, tmp_path / "repo")
    text = policy.read_text().replace("type: directory", "type: image").replace(
        f"path: {tmp_path}\n", f"path: {image}\n")
    policy.write_text(text)
    e2e.apply_ok(policy, drorch_env)
    return image, policy


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "existing-file"])
def test_image_onto_a_full_disk(tmp_path, image_backup, drorch_env, e2e, mount_fs, existing):
    image, policy = image_backup
    with mount_fs("tmpfs", "size=3m") as disk:
        target = disk / "disk.img"
        if existing:
            target.write_bytes(b"old image\n")
        proc = e2e.run_drorch("restore", policy, "latest", "--to", target, "--quiet", env=drorch_env)
        sentence = e2e.assert_one_error(proc, 1, "out of space", str(target))
        if existing:  # partly updated: renamed so it cannot pass for the image
            assert not target.exists() and (disk / "disk.img.drorch-incomplete").exists()
            assert "drorch-incomplete" in sentence
        else:
            assert "nothing was written" in sentence and not os.listdir(disk)
