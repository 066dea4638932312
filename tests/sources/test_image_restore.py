"""Restoring image snapshots onto files and devices: compare first, write only what differs."""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

import pytest

MiB = 1024 * 1024


def _restore(e2e, policy: Path, to: Path, env: dict[str, str], snapshot: str = "latest") -> dict:
    return e2e.drorch_json("restore", policy, snapshot, "--to", to, env=env)


@pytest.fixture
def mirrored(tmp_path, src, drorch_env, e2e):
    image = src.image(tmp_path / "vm.raw", 32 * MiB, [(0, 4 * MiB), (16 * MiB, 4 * MiB)])
    policy = src.policy(tmp_path, image, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    return image, policy


def test_failback_onto_the_old_image_writes_only_the_changes(tmp_path, src, mirrored, drorch_env, e2e):
    image, policy = mirrored
    old = tmp_path / "old.raw"
    first = _restore(e2e, policy, old, drorch_env)
    assert first["bytes_compared"] == 0 and first["bytes_written"] == 8 * MiB  # new file: nothing to read
    assert old.stat().st_blocks * 512 < 10 * MiB

    src.overwrite(old, 2 * MiB, 100_000, seed=9)  # the old site diverged a little
    src.overwrite(old, 25 * MiB, 4096, seed=10)  # including inside a hole
    again = _restore(e2e, policy, old, drorch_env)
    assert filecmp.cmp(image, old, shallow=False)
    assert again["bytes_compared"] == 32 * MiB
    assert 0 < again["bytes_written"] <= 2 * 8 * MiB // 4  # the one or two chunks around the edit
    assert again["bytes_zeroed"] > 0
    assert old.stat().st_blocks * 512 < 10 * MiB, "the stray write in the hole was not punched out"

    same = _restore(e2e, policy, old, drorch_env)
    assert same["bytes_written"] == 0 and same["bytes_zeroed"] == 0


def test_restore_onto_a_block_device_in_place(tmp_path, src, mirrored, drorch_env, loop_device, e2e):
    image, policy = mirrored
    disk = src.image(tmp_path / "disk.raw", 40 * MiB, [(0, 40 * MiB)], seed=3)  # full of other data
    device = loop_device(disk)
    first = _restore(e2e, policy, device, drorch_env)
    assert first["bytes_compared"] == 32 * MiB
    with open(device, "rb") as fh:
        assert fh.read(32 * MiB) == image.read_bytes()
    second = _restore(e2e, policy, device, drorch_env)
    assert second["bytes_written"] == 0 and second["bytes_zeroed"] == 0


def test_restore_refuses_a_device_that_is_too_small(tmp_path, src, mirrored, drorch_env, loop_device, e2e):
    _image, policy = mirrored
    device = loop_device(src.image(tmp_path / "small.raw", 8 * MiB, []))
    proc = e2e.run_drorch("restore", policy, "latest", "--to", device, env=drorch_env)
    e2e.assert_one_error(proc, 2, "less than the image")


def test_restore_refuses_a_mounted_device(tmp_path, src, mirrored, drorch_env, loop_device, scratch_dir, e2e):
    _image, policy = mirrored
    backing = src.image(tmp_path / "fs.raw", 40 * MiB, [])
    if subprocess.run(["mkfs.ext4", "-q", str(backing)], capture_output=True).returncode != 0:
        pytest.skip("mkfs.ext4 not available")
    device = loop_device(backing)
    if subprocess.run(["mount", str(device), str(scratch_dir)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount here")
    try:
        proc = e2e.run_drorch("restore", policy, "latest", "--to", device, env=drorch_env)
        e2e.assert_one_error(proc, 1, "busy", "unmount")
    finally:
        subprocess.run(["umount", str(scratch_dir)], capture_output=True)


def test_out_of_space_is_refused_before_writing(tmp_path, src, mirrored, drorch_env, scratch_dir, e2e):
    _image, policy = mirrored
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(scratch_dir)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        target = scratch_dir / "vm.raw"
        proc = e2e.run_drorch("restore", policy, "latest", "--to", target, env=drorch_env)
        e2e.assert_one_error(proc, 1, "out of space", "nothing was written")
        assert list(scratch_dir.iterdir()) == []
    finally:
        subprocess.run(["umount", str(scratch_dir)], capture_output=True)


def test_running_out_of_space_midway_leaves_nothing_that_looks_valid(tmp_path, src, mirrored, drorch_env,
                                                                     scratch_dir, e2e):
    _image, policy = mirrored
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(scratch_dir)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        target = scratch_dir / "vm.raw"
        target.write_bytes(b"")  # an existing (empty) file: updated in place, no space check first
        proc = e2e.run_drorch("restore", policy, "latest", "--to", target, "--quiet", env=drorch_env)
        e2e.assert_one_error(proc, 1, "out of space", "drorch-incomplete")
        assert not target.exists(), "a half-written image was left under its own name"
        assert (scratch_dir / "vm.raw.drorch-incomplete").exists()
    finally:
        subprocess.run(["umount", str(scratch_dir)], capture_output=True)


def test_include_is_refused_for_an_image(tmp_path, mirrored, drorch_env, e2e):
    _image, policy = mirrored
    proc = e2e.run_drorch("restore", policy, "latest", "--to", tmp_path / "x", "--include", "a",
                          env=drorch_env)
    e2e.assert_one_error(proc, 2, "disk image")
