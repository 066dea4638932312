"""Issue 16, repository format, end to end: crashes during the first apply, a lost config, a
damaged snapshot file, clock skew, readers beside a writer, read-only repositories, lock files
under object lock. stock restic is the oracle of what a whole repository is."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from drorch.providers.local import LocalStore
from drorch.repository.lock import RepositoryLock
from drorch.repository.repository import Repository
from drorch.repository.snapshot import Snapshot, load_snapshots, save_snapshot

pytestmark = pytest.mark.restic

PAUSE = "DRORCH_TEST_PAUSE_INIT"


def _files(repo: Path, folder: str) -> list[str]:
    base = repo / folder
    return sorted(p.name for p in base.rglob("*") if p.is_file()) if base.is_dir() else []


def _open(repo: Path, key: str) -> Repository:
    return Repository.open(LocalStore(repo), key.encode(), "local")


# ----------------------------------------------------------------------------- kill -9 during init


@pytest.mark.parametrize("point", ["before-key", "before-config", "after-config"])
def test_kill_9_between_the_writes_of_init_leaves_none_or_a_whole_repository(
        tmp_path, dataset, drorch_env, drorch_key, restic, e2e, point):
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    proc = e2e.start_drorch("apply", policy, "--quiet", "--yes", env=drorch_env | {PAUSE: point})
    line = proc.stderr.readline()
    assert f"paused {point}" in line, line + proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)  # a real kill -9, at a known point
    proc.communicate(timeout=30)
    assert (repo / "config").exists() == (point == "after-config")
    keys_before = _files(repo, "keys")
    result = e2e.apply_ok(policy, drorch_env)
    assert _files(repo, "keys") == (keys_before or _files(repo, "keys"))
    assert len(_files(repo, "keys")) == 1, "a second key file was added"
    restic.check(repo, read_data=True)
    assert [s["id"] for s in restic.snapshots(repo)] == [result["snapshot"]]


@pytest.mark.slow
def test_kill_9_at_random_moments_of_the_first_apply(tmp_path, dataset, drorch_env, restic, e2e):
    rng = random.Random(16)
    for trial in range(4):
        repo = tmp_path / f"repo-{trial}"
        policy = e2e.make_policy(tmp_path, dataset, repo, filename=f"p{trial}.yaml")
        proc = e2e.start_drorch("apply", policy, "--quiet", "--yes", env=drorch_env)
        time.sleep(rng.uniform(0.3, 1.2))  # interpreter start-up is ~0.3 s; init follows
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        rerun = e2e.run_drorch("apply", policy, "--quiet", "--yes", env=drorch_env)
        assert rerun.returncode == 0, f"trial {trial}" + e2e.describe(rerun)
        assert len(_files(repo, "keys")) == 1
        restic.check(repo, read_data=False, lock=False)


# ----------------------------------------------------------------------------- a lost config


@pytest.mark.parametrize("also_removed", [(), ("index",), ("keys",), ("snapshots", "index")])
def test_a_repository_without_config_is_never_initialised_over(
        tmp_path, dataset, drorch_env, restic, e2e, also_removed):
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    e2e.apply_ok(policy, drorch_env)
    saved = {"config": (repo / "config").read_bytes()}
    (repo / "config").unlink()
    moved = tmp_path / "moved"
    for folder in also_removed:
        (repo / folder).rename(moved.with_name(f"moved-{folder}"))
    listing = {f: _files(repo, f) for f in ("keys", "data", "index", "snapshots")}
    for command, code in (("apply", 1), ("snapshots", 3), ("restore", 3)):  # apply: the run failed
        extra = {"apply": ["--yes"], "snapshots": [], "restore": ["latest", "--to", tmp_path / "out"]}
        proc = e2e.run_drorch(command, policy, *extra[command], env=drorch_env)
        text = e2e.assert_one_error(proc, code, "no config")
        assert "data/" in text, text
    plan = e2e.run_drorch("plan", policy, env=drorch_env)
    assert plan.returncode == 1 and "no config" in plan.stdout, e2e.describe(plan)
    assert not (repo / "config").exists()
    assert {f: _files(repo, f) for f in listing} == listing, "something was written"
    (repo / "config").write_bytes(saved["config"])
    for folder in also_removed:
        moved.with_name(f"moved-{folder}").rename(repo / folder)
    restic.check(repo, read_data=True, lock=False)


def test_key_files_of_another_password_without_config_are_refused(tmp_path, dataset, drorch_env, e2e):
    repo = tmp_path / "repo"
    Repository.init(LocalStore(repo), b"someone else", "local")
    (repo / "config").unlink()
    policy = e2e.make_policy(tmp_path, dataset, repo)
    proc = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=drorch_env)
    e2e.assert_one_error(proc, 1, "key files but no config")
    assert len(_files(repo, "keys")) == 1


# ----------------------------------------------------------------------------- a damaged snapshot


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_one_damaged_snapshot_file_blocks_nothing_else(tmp_path, dataset, drorch_env, e2e, damage):
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    first = e2e.apply_ok(policy, drorch_env)["snapshot"]
    (dataset / "second.txt").write_text("second run\n")
    second = e2e.apply_ok(policy, drorch_env)["snapshot"]
    bad = repo / "snapshots" / first
    bad.write_bytes({"garbage": os.urandom(300), "truncated": bad.read_bytes()[:40], "empty": b""}[damage])

    listing = e2e.run_drorch("snapshots", policy, "--json", env=drorch_env)
    assert listing.returncode == 0, e2e.describe(listing)
    assert [s["id"] for s in json.loads(listing.stdout)["local"]] == [second]
    assert first[:8] in listing.stderr and "Traceback" not in listing.stderr

    out = tmp_path / "out"
    restored = e2e.run_drorch("restore", policy, "latest", "--to", out, "--quiet", env=drorch_env)
    assert restored.returncode == 0, e2e.describe(restored)
    e2e.assert_same_tree(dataset, out)
    (dataset / "third.txt").write_text("third run\n")
    e2e.apply_ok(policy, drorch_env)
    status = e2e.run_drorch("status", policy, env=drorch_env)
    assert status.returncode == 0, e2e.describe(status)
    verify = e2e.run_drorch("verify", policy, env=drorch_env)
    assert verify.returncode == 3 and first in verify.stdout, e2e.describe(verify)
    assert bad.exists(), "the damaged file is evidence: nothing deletes it"


# ----------------------------------------------------------------------------- clock skew


def test_a_future_dated_snapshot_is_neither_latest_nor_kept_instead_of_the_new_one(
        tmp_path, dataset, drorch_env, drorch_key, e2e):
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo, retention={"last": 1})
    taken = e2e.apply_ok(policy, drorch_env)["snapshot"]
    repository = _open(repo, drorch_key)
    [snapshot] = load_snapshots(repository)
    future = Snapshot(snapshot.time_ns + 30 * 365 * 86400 * 10**9, snapshot.tree, snapshot.paths,
                      tags=snapshot.tags)
    save_snapshot(repository, future)

    (dataset / "after-skew.txt").write_text("newer than the future snapshot's data\n")
    proc = e2e.run_drorch("apply", policy, "--yes", "--json", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    new = json.loads(proc.stdout)["mirrors"][0]["targets"][0]
    assert future.id[:8] in proc.stderr and "future" in proc.stderr
    ids = set(_files(repo, "snapshots"))
    assert new["snapshot"] in ids and future.id in ids and taken not in ids

    out = tmp_path / "out"
    restored = e2e.run_drorch("restore", policy, "latest", "--to", out, "--quiet", env=drorch_env)
    assert restored.returncode == 0, e2e.describe(restored)
    assert (out / "after-skew.txt").exists(), "latest picked the future-dated snapshot"

    status = e2e.run_drorch("status", policy, "--json", env=drorch_env)
    assert status.returncode == 3, e2e.describe(status)
    [target] = json.loads(status.stdout)["mirrors"][0]["targets"]
    assert target["age_s"] >= 0 and target["snapshot"] == new["snapshot"]
    assert "future" in target["error"] and future.id[:8] in target["error"]


# ----------------------------------------------------------------------------- locks


@pytest.mark.parametrize("command", ["restore", "verify"])
def test_restore_and_verify_run_beside_an_apply_but_not_beside_a_prune(
        tmp_path, dataset, drorch_env, drorch_key, e2e, command):
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    e2e.apply_ok(policy, drorch_env)
    args = ["latest", "--to", tmp_path / "out"] if command == "restore" else []
    repository = _open(repo, drorch_key)
    with RepositoryLock(repository, exclusive=False, writer=True).acquire():  # what apply holds
        proc = e2e.run_drorch(command, policy, *args, "--quiet", env=drorch_env)
        assert proc.returncode == 0, e2e.describe(proc)
        second_apply = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=drorch_env)
        assert second_apply.returncode == 1 and "busy" in second_apply.stderr, e2e.describe(second_apply)
    with RepositoryLock(repository, exclusive=True).acquire():  # what forget and prune hold
        proc = e2e.run_drorch(command, policy, *args, "--quiet", env=drorch_env)
        e2e.assert_one_error(proc, 1, "busy")


def _read_only(path: Path, *argv: str | os.PathLike[str], env: dict[str, str]
               ) -> subprocess.CompletedProcess[str]:
    """Run argv with ``path`` bind-mounted read-only in a private mount namespace (root ignores modes)."""
    script = ('mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"')
    return subprocess.run(["unshare", "-m", "sh", "-c", script, str(path), *map(str, argv)],
                          env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_a_read_only_repository_restores_and_verifies_with_no_lock(tmp_path, dataset, drorch_env, e2e):
    if os.geteuid() != 0:
        pytest.skip("needs root for a private read-only bind mount")
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    e2e.apply_ok(policy, drorch_env)
    drorch = [*e2e.drorch_argv()]
    out = tmp_path / "out"
    refused = _read_only(repo, *drorch, "restore", policy, "latest", "--to", out, "--quiet", env=drorch_env)
    text = e2e.assert_one_error(refused, 1, "--no-lock")
    assert "Read-only" in text or "read-only" in text, text
    restored = _read_only(repo, *drorch, "restore", policy, "latest", "--to", out, "--quiet", "--no-lock",
                          env=drorch_env)
    assert restored.returncode == 0, e2e.describe(restored)
    e2e.assert_same_tree(dataset, out)
    verified = _read_only(repo, *drorch, "verify", policy, "--read-data", "--no-lock", "--quiet",
                          env=drorch_env)
    assert verified.returncode == 0, e2e.describe(verified)


# ----------------------------------------------------------------------------- junk keys, crafted trees

HUGE_N_KEY = {"kdf": "scrypt", "N": 2**40, "r": 8, "p": 1, "salt": "c2FsdA==", "data": "ZGF0YQ=="}
JUNK_KEY_FILES = {"huge-scrypt": json.dumps(HUGE_N_KEY), "a-list": "[1, 2]",
                  "salt-not-a-string": json.dumps(HUGE_N_KEY | {"N": 2**15, "salt": 7})}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", list(JUNK_KEY_FILES))
def test_a_planted_key_file_is_named_and_skipped(tmp_path, dataset, drorch_env, e2e, kind):
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    e2e.apply_ok(policy, drorch_env)
    planted = "0" * 64
    (repo / "keys" / planted).write_text(JUNK_KEY_FILES[kind])
    proc = e2e.run_drorch("snapshots", policy, env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    [warning] = [line for line in proc.stderr.splitlines() if planted[:12] in line]
    assert "refused" in warning
    (dataset / "more.txt").write_text("more\n")
    e2e.apply_ok(policy, drorch_env)


CRAFTED = {
    "no-type": [{"name": "a", "content": []}],
    "no-subtree": [{"name": "a", "type": "dir"}],
    "bad-time": [{"name": "a", "type": "file", "content": [], "mtime": "someday"}],
}


@pytest.mark.parametrize("kind", list(CRAFTED))
def test_a_crafted_tree_is_one_sentence_and_exit_3(tmp_path, dataset, drorch_env, drorch_key, e2e, kind):
    from drorch.repository.pack import TREE
    from drorch.repository.tree import encode_tree
    from drorch.repository.uploader import PackUploader

    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    e2e.apply_ok(policy, drorch_env)
    repository = _open(repo, drorch_key)
    [good] = load_snapshots(repository)
    uploader = PackUploader(repository)
    crafted = uploader.save(TREE, json.dumps({"nodes": CRAFTED[kind]}).encode() + b"\n")
    root = crafted
    for part in reversed(dataset.parts[1:]):
        root = uploader.save(TREE, encode_tree([{"name": part, "type": "dir", "subtree": root}]))
    repository.save_index(uploader.flush())
    uploader.close()
    bad = Snapshot(good.time_ns + 10**9, root, good.paths, tags=good.tags)
    save_snapshot(repository, bad)

    verify = e2e.run_drorch("verify", policy, env=drorch_env)
    assert verify.returncode == 3 and "Traceback" not in verify.stdout + verify.stderr, e2e.describe(verify)
    assert crafted[:12] in verify.stdout or "'a'" in verify.stdout, e2e.describe(verify)
    proc = e2e.run_drorch("restore", policy, bad.id[:8], "--to", tmp_path / "out", "--quiet", env=drorch_env)
    if kind == "bad-time":  # the content is intact: restored, the time it cannot apply is a warning
        assert proc.returncode == 0 and "warning:" in proc.stderr, e2e.describe(proc)  # (restic: same)
        assert "Traceback" not in proc.stderr
    else:
        e2e.assert_one_error(proc, 3)
    proc = e2e.run_drorch("restore", policy, good.id[:8], "--to", tmp_path / "good", "--quiet",
                          env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
