"""``drorch verify``: exit 0 on a clean repository, exit 3 naming every damaged pack."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, drorch_key, e2e):
    """One applied repository per module; each test damages its own copy."""
    base = tmp_path_factory.mktemp("verify")
    src = e2e.build_dataset(base / "src")
    policy = e2e.make_policy(base, src, base / "repo")
    e2e.apply_ok(policy, e2e.drorch_environment(base / "home", drorch_key))
    return base / "repo", src


@pytest.fixture
def repo_copy(tmp_path, pristine, e2e):
    repo, src = pristine
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy)
    return copy, e2e.make_policy(tmp_path, src, copy)


def _largest_pack(repo: Path, e2e) -> Path:
    return max(e2e.pack_files(repo), key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("read_data", [False, True])
def test_clean_repository_verifies(repo_copy, drorch_env, drorch_key, e2e, read_data):
    _, policy = repo_copy
    flags = ["--read-data"] if read_data else []
    proc = e2e.run_drorch("verify", policy, *flags, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert drorch_key not in proc.stdout + proc.stderr
    doc = e2e.drorch_json("verify", policy, *flags, env=drorch_env)
    assert doc["local"]["ok"] is True
    assert doc["local"]["damaged_packs"] == {} and doc["local"]["errors"] == []
    assert doc["local"]["snapshots"] == 1
    if read_data:
        assert doc["local"]["packs_read"] == len(e2e.pack_files(repo_copy[0]))


def _flip_byte(pack: Path) -> None:
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x5A
    os.chmod(pack, 0o600)
    pack.write_bytes(bytes(data))


def _truncate(pack: Path) -> None:
    os.chmod(pack, 0o600)
    os.truncate(pack, pack.stat().st_size - 100)


def _delete(pack: Path) -> None:
    pack.unlink()


@pytest.mark.parametrize("damage", [_flip_byte, _truncate, _delete],
                         ids=["flip-one-byte", "truncate", "delete"])
def test_damaged_pack_is_named(repo_copy, drorch_env, drorch_key, e2e, damage):
    repo, policy = repo_copy
    pack = _largest_pack(repo, e2e)
    damage(pack)

    proc = e2e.run_drorch("verify", policy, "--read-data", "--quiet", env=drorch_env)
    assert proc.returncode == 3, e2e.describe(proc)
    assert pack.name in proc.stdout + proc.stderr, "verify did not name the damaged pack" + \
        e2e.describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert drorch_key not in proc.stdout + proc.stderr

    doc = e2e.drorch_json("verify", policy, "--read-data", env=drorch_env, expect=3)
    assert doc["local"]["ok"] is False
    assert pack.name in doc["local"]["damaged_packs"], json.dumps(doc, indent=1)


def test_damaged_pack_is_named_without_read_data_when_its_size_changed(
        repo_copy, drorch_env, e2e):
    """Truncation and deletion show in the structure check alone (sizes, existence)."""
    repo, policy = repo_copy
    pack = _largest_pack(repo, e2e)
    _truncate(pack)
    doc = e2e.drorch_json("verify", policy, env=drorch_env, expect=3)
    assert pack.name in doc["local"]["damaged_packs"], doc


@pytest.mark.restic
def test_restic_agrees_about_the_damage(repo_copy, restic, e2e):
    repo, _ = repo_copy
    restic.check(repo, read_data=True)
    _flip_byte(_largest_pack(repo, e2e))
    proc = restic("check", "--read-data", repo=repo, check=False)
    assert proc.returncode != 0, "restic should see the flipped byte too" + e2e.describe(proc)


def test_restore_from_damaged_pack_fails_clearly(tmp_path, repo_copy, drorch_env, drorch_key,
                                                 e2e):
    repo, policy = repo_copy
    pack = _largest_pack(repo, e2e)
    _flip_byte(pack)
    proc = e2e.run_drorch("restore", policy, "latest", "--to", tmp_path / "out", "--quiet",
                          env=drorch_env)
    sentence = e2e.assert_one_error(proc, 3, secret=drorch_key)
    assert pack.name[:12] in sentence or "damaged" in sentence, sentence
