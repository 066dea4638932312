"""Image and volume sources end to end: restic sees one ordinary file and restores it byte for byte.

Sparse images are mirrored without reading their holes, an edit adds only the
chunks around it, the repository passes ``restic check --read-data``, and both
``restic restore`` and ``drorch restore`` reproduce the image (drorch keeps the
holes).
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.restic

MiB = 1024 * 1024


def _summary(drorch_json, policy: Path, env: dict[str, str]) -> dict:
    [snap] = drorch_json("snapshots", policy, env=env)["local"][-1:]
    return snap["drorch_summary"]


def test_sparse_image_round_trips_through_restic_and_drorch(tmp_path, src, drorch_env, restic, e2e):
    image = src.image(tmp_path / "vm.raw", 48 * MiB, [(0, 3 * MiB), (9 * MiB + 4096, 2 * MiB),
                                                       (47 * MiB, MiB)])
    repo = tmp_path / "repo"
    policy = src.policy(tmp_path, image, repo)
    result = e2e.apply_ok(policy, drorch_env)
    assert result["files_new"] == 1
    assert result["bytes_stored"] < 8 * MiB  # 6 MiB of random data; 42 MiB of holes cost nothing

    restic.check(repo, read_data=True)
    [snap] = restic.snapshots(repo)
    assert snap["paths"] == [str(image)]
    listing = restic("ls", "latest", repo=repo).stdout
    assert str(image) in listing

    out = tmp_path / "restic-out"
    restic("restore", "latest", "--target", out, repo=repo)
    assert filecmp.cmp(image, out / image.relative_to("/"), shallow=False)

    into = tmp_path / "drorch-out"
    into.mkdir()
    proc = e2e.run_drorch("restore", policy, "latest", "--to", into, env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    restored = into / image.name
    assert filecmp.cmp(image, restored, shallow=False)
    st = restored.stat()
    assert st.st_size == 48 * MiB
    assert st.st_blocks * 512 < 10 * MiB, "holes were filled in on restore"


def test_a_small_edit_in_a_large_image_adds_a_few_mib(tmp_path, src, drorch_env, drorch_json, restic, e2e):
    image = src.image(tmp_path / "big.raw", 256 * MiB, [(0, 96 * MiB), (200 * MiB, 32 * MiB)])
    repo = tmp_path / "repo"
    policy = src.policy(tmp_path, image, repo)
    e2e.apply_ok(policy, drorch_env)
    src.overwrite(image, 40 * MiB + 12345, MiB)  # 1 MiB, not block aligned
    result = e2e.apply_ok(policy, drorch_env)
    assert result["files_changed"] == 1
    assert result["bytes_stored"] < 5 * MiB, result
    summary = _summary(drorch_json, policy, drorch_env)["image"]
    assert summary["blocks_changed"] <= 4
    assert summary["bytes_chunked"] < 12 * MiB  # only the region around the edit is cut again
    assert summary["bytes_reused"] > 100 * MiB

    out = tmp_path / "restic-out"
    restic("restore", "latest", "--target", out, repo=repo)
    assert filecmp.cmp(image, out / image.relative_to("/"), shallow=False)


def test_unchanged_image_file_is_not_read_again(tmp_path, src, drorch_env, e2e):
    image = src.image(tmp_path / "vm.raw", 16 * MiB, [(MiB, 2 * MiB)])
    policy = src.policy(tmp_path, image, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    again = e2e.apply_ok(policy, drorch_env)
    assert again["files_unmodified"] == 1
    assert again["bytes_read"] == 0


def test_image_filled_into_its_holes_and_grown(tmp_path, src, drorch_env, restic, e2e):
    image = src.image(tmp_path / "vm.raw", 20 * MiB + 777, [(0, MiB)])
    repo = tmp_path / "repo"
    policy = src.policy(tmp_path, image, repo)
    e2e.apply_ok(policy, drorch_env)
    src.overwrite(image, 10 * MiB, 3 * MiB, seed=5)  # data where there was a hole
    with open(image, "ab") as fh:
        fh.write(os.urandom(5000))  # and a longer, unaligned tail
    e2e.apply_ok(policy, drorch_env)
    restic.check(repo, read_data=True)
    out = tmp_path / "restic-out"
    restic("restore", "latest", "--target", out, repo=repo)
    assert filecmp.cmp(image, out / image.relative_to("/"), shallow=False)


def test_volume_source_reads_a_block_device(tmp_path, src, drorch_env, restic, loop_device, e2e):
    backing = src.image(tmp_path / "backing.raw", 24 * MiB, [(2 * MiB, 3 * MiB), (20 * MiB, MiB)])
    device = loop_device(backing)
    repo = tmp_path / "repo"
    policy = src.policy(tmp_path, device, repo, type="volume")
    result = e2e.apply_ok(policy, drorch_env)
    assert result["bytes_stored"] < 6 * MiB  # zero blocks of the device are not stored as data
    restic.check(repo, read_data=True)
    out = tmp_path / "restic-out"
    restic("restore", "latest", "--target", out, repo=repo)
    assert filecmp.cmp(backing, out / device.relative_to("/"), shallow=False)
