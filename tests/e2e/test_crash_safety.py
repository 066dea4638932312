"""SPEC §4: an interrupted apply leaves no visible snapshot and the next apply reuses its uploads.

``drorch apply`` is killed with SIGKILL (no cleanup handlers run) at moments
picked by watching the repository: right after its lock appears, after the
first pack, after several packs. Then: no new snapshot, restic's check passes
(packs in no index are a hint, not an error), the stale lock does not block the
next apply, and that apply uploads only what had not been uploaded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FILES = 6
FILE_SIZE = 16 * 1024 * 1024  # 96 MiB of incompressible data: ~6 packs, a second or two
SLACK = 1024 * 1024  # tree blobs, blob and header overhead


@pytest.fixture(scope="module")
def big_source(tmp_path_factory) -> Path:
    import random

    src = tmp_path_factory.mktemp("crash") / "src"
    src.mkdir()
    for i in range(FILES):
        (src / f"part-{i}.bin").write_bytes(random.Random(f"crash-{i}").randbytes(FILE_SIZE))
    (src / "small.txt").write_bytes(b"small\n")
    return src


def _lock_files(repo: Path) -> list[Path]:
    locks = repo / "locks"
    return sorted(locks.iterdir()) if locks.is_dir() else []


def _kill_when(proc: subprocess.Popen[str], ready, what: str, timeout: float = 60) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; fail if it ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"apply ended (exit {proc.returncode}) before {what}; it could not be "
                        f"interrupted there\nstdout: {out}\nstderr: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    if proc.returncode != -signal.SIGKILL:
        pytest.fail(f"apply finished (exit {proc.returncode}) before the kill after {what} "
                    "landed; make the data set bigger")


def _snapshot_ids(policy: Path, env, e2e) -> list[str]:
    return [s["id"] for s in e2e.drorch_json("snapshots", policy, env=env)["local"]]


@pytest.mark.restic
@pytest.mark.parametrize("point, packs_before_kill", [
    ("lock", 0),          # repository opened and locked, nothing uploaded
    ("first pack", 1),
    ("several packs", 3),
])
def test_kill_9_during_apply(tmp_path, big_source, drorch_env, restic, e2e, point,
                             packs_before_kill):
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, big_source, repo)
    proc = e2e.start_drorch("apply", policy, "--json", env=drorch_env)
    killed_pid = proc.pid
    if packs_before_kill == 0:
        _kill_when(proc, lambda: bool(_lock_files(repo)), "its lock appeared")
    else:
        _kill_when(proc, lambda: len(e2e.pack_files(repo)) >= packs_before_kill,
                   f"{packs_before_kill} pack(s) appeared")

    orphans = e2e.pack_files(repo)
    assert len(orphans) >= packs_before_kill
    assert _lock_files(repo), "the killed run's lock should still be there (it is stale now)"
    assert _snapshot_ids(policy, drorch_env, e2e) == [], "a killed apply left a snapshot"
    restic.check(repo, read_data=False, lock=False)
    if packs_before_kill == 0:
        # restic reads the lock drorch left and attributes it to the dead process
        [lock_file] = _lock_files(repo)
        held = json.loads(restic("--no-lock", "cat", "lock", lock_file.name, repo=repo).stdout)
        # apply's lock is shared, as restic's backup (restores run meanwhile); drorch marks it
        # as a writer's (a field restic does not show) so that a second apply waits
        assert (held["pid"], held["exclusive"]) == (killed_pid, False), held

    # the stale lock of the dead process must not block this run
    resumed = e2e.apply_ok(policy, drorch_env)
    assert resumed["packs_adopted"] == len(orphans), resumed
    uploaded = sum(p.stat().st_size for p in orphans)
    total = FILES * FILE_SIZE + len(b"small\n")
    assert resumed["bytes_added"] <= total - uploaded + SLACK, (
        f"{uploaded} bytes of packs were already uploaded, yet the next apply added "
        f"{resumed['bytes_added']} of {total}: {resumed}")
    if orphans:
        assert resumed["bytes_added"] < total, resumed
    assert _snapshot_ids(policy, drorch_env, e2e) == [resumed["snapshot"]]
    assert _lock_files(repo) == [], "locks were left behind after a successful apply"
    restic.check(repo, read_data=True)
    if packs_before_kill == 3:
        out = tmp_path / "out"
        proc = e2e.run_drorch("restore", policy, "latest", "--to", out, "--quiet",
                              env=drorch_env)
        assert proc.returncode == 0, e2e.describe(proc)
        e2e.assert_same_tree(big_source, out)


@pytest.mark.restic
def test_kill_9_during_incremental_apply_keeps_the_previous_snapshot(
        tmp_path, big_source, drorch_env, restic, e2e):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        os.link(big_source / f"part-{i}.bin", src / f"part-{i}.bin")
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, src, repo)
    first = e2e.apply_ok(policy, drorch_env)
    for i in range(2, FILES):
        os.link(big_source / f"part-{i}.bin", src / f"part-{i}.bin")
    packs_before = len(e2e.pack_files(repo))
    proc = e2e.start_drorch("apply", policy, "--json", env=drorch_env)
    _kill_when(proc, lambda: len(e2e.pack_files(repo)) > packs_before, "a new pack appeared")

    assert _snapshot_ids(policy, drorch_env, e2e) == [first["snapshot"]]
    restic.check(repo, read_data=False, lock=False)
    resumed = e2e.apply_ok(policy, drorch_env)
    assert resumed["packs_adopted"] >= 1, resumed
    assert resumed["files_unmodified"] == 2, resumed
    assert _snapshot_ids(policy, drorch_env, e2e) == [first["snapshot"], resumed["snapshot"]]
    restic.check(repo, read_data=True)


def test_interrupted_apply_with_sigint_says_so_and_leaves_no_snapshot(
        tmp_path, big_source, drorch_env, e2e):
    """Ctrl-C: exit 130, one sentence, no traceback; the lock is released on the way out."""
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, big_source, repo)
    proc = e2e.start_drorch("apply", policy, "--quiet", env=drorch_env)
    deadline = time.monotonic() + 60
    while not e2e.pack_files(repo):
        assert proc.poll() is None, "apply ended before its first pack"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, f"exit {proc.returncode}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in err, err
    assert "interrupted" in err.lower(), err
    assert _snapshot_ids(policy, drorch_env, e2e) == []
    assert _lock_files(repo) == [], "an interrupted run left its lock behind"
    resumed = e2e.apply_ok(policy, drorch_env)
    assert resumed["bytes_added"] < FILES * FILE_SIZE, resumed
