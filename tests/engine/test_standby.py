"""A standby follows its mirror: only differing files are written, the rest keep their inode."""

from __future__ import annotations

import os
import time

import pytest

from drorch.engine.apply import apply_policy
from drorch.engine.standby import Follower, StandbyPromoted
from drorch.engine.status import policy_status
from drorch.policy import load_policy
from drorch.restore.sync import TEMP_PREFIX
from drorch.secrets import key_source
from drorch.state.standby import StandbyStates


@pytest.fixture
def setup(tmp_path, dataset, drorch_key, monkeypatch, make_policy):
    monkeypatch.setenv("DRORCH_KEY", drorch_key)
    monkeypatch.setenv("DRORCH_HOME", str(tmp_path / "home"))
    copy = tmp_path / "standby"
    path = make_policy(tmp_path, dataset, tmp_path / "repo",
                       standby={"path": str(copy), "follow": "manual"})
    policy = load_policy(path)
    return policy, dataset, copy


def _apply(policy) -> str:
    result = apply_policy(policy)
    assert result.exit_code == 0, result.to_json()
    return result.mirrors[0].targets[0].snapshot or ""


def _inodes(root):
    return {str(p.relative_to(root)): p.lstat().st_ino for p in root.rglob("*")}


def test_follow_writes_only_what_differs(setup, tree_state, assert_same_tree):
    policy, source, copy = setup
    first = _apply(policy)
    follower = Follower(policy, "m", log=lambda _: None)
    applied = follower.catch_up()
    assert applied is not None and applied.snapshot == first
    assert_same_tree(source, copy)
    before = _inodes(copy)

    (source / "text" / "readme.txt").write_bytes(b"changed\n")
    (source / "new dir").mkdir()
    (source / "new dir" / "fresh.txt").write_bytes(b"fresh\n")
    (source / "nested" / "a" / "sibling.bin").unlink()
    os.unlink(source / "link-to-readme")
    os.symlink("text/notes.md", source / "link-to-readme")
    os.chmod(source / "run.sh", 0o700)
    second = _apply(policy)

    applied = follower.catch_up()
    assert applied is not None and applied.snapshot == second and applied.stats is not None
    assert_same_tree(source, copy)
    after = _inodes(copy)
    changed = {"text/readme.txt", "link-to-readme"}
    for rel, inode in before.items():
        if rel in after and rel not in changed:
            assert after[rel] == inode, f"{rel} was rewritten although unchanged"
    assert after["text/readme.txt"] != before["text/readme.txt"]
    assert "nested/a/sibling.bin" not in after
    assert applied.stats.files_written == 2  # readme.txt and fresh.txt
    assert applied.stats.symlinks_written == 1
    assert applied.stats.removed == 1
    assert applied.stats.metadata_fixed == 1  # run.sh: mode only, same inode
    assert not [p for p in copy.rglob(TEMP_PREFIX + "*")]

    again = follower.catch_up()
    assert again is not None and again.stats is None  # already current: nothing compared


def test_leftovers_and_local_edits_are_replaced(setup, assert_same_tree):
    policy, source, copy = setup
    _apply(policy)
    follower = Follower(policy, "m", log=lambda _: None)
    follower.catch_up()
    (copy / f"{TEMP_PREFIX}big.bin.dead").write_bytes(b"half-written by a crashed sync")
    (copy / "stray.txt").write_bytes(b"not in any snapshot")
    (copy / "empty.txt").write_bytes(b"edited at the standby")
    (source / "small.bin").write_bytes(b"new content")
    _apply(policy)
    follower.catch_up()
    assert_same_tree(source, copy)


def test_promoted_copy_is_never_overwritten(setup, tmp_path):
    policy, source, copy = setup
    _apply(policy)
    follower = Follower(policy, "m", log=lambda _: None)
    follower.catch_up()
    (source / "after.txt").write_bytes(b"written before the outage")
    newest = _apply(policy)
    promoted = follower.promote()
    assert promoted is not None and promoted.snapshot == newest  # final catch-up
    assert (copy / "after.txt").exists()
    (copy / "served.txt").write_bytes(b"written at the DR site")
    (source / "late.txt").write_bytes(b"x")
    _apply(policy)
    with pytest.raises(StandbyPromoted):
        follower.catch_up()
    assert (copy / "served.txt").exists() and not (copy / "late.txt").exists()
    record = StandbyStates(tmp_path / "home" / "state.db").get(policy.metadata.name, "m")
    assert record is not None and record.promoted
    follower.rejoin()
    follower.catch_up()
    assert (copy / "late.txt").exists() and not (copy / "served.txt").exists()


def test_status_shows_standby_lag(setup):
    policy, source, copy = setup
    keys = key_source(policy.encryption)
    _apply(policy)
    follower = Follower(policy, "m", log=lambda _: None)
    report = policy_status(policy, keys)
    assert report.mirrors[0].standby is not None and report.mirrors[0].standby.snapshot is None
    follower.catch_up()
    time.sleep(0.01)
    (source / "more.txt").write_bytes(b"more")
    _apply(policy)
    standby = policy_status(policy, keys).mirrors[0].standby
    assert standby is not None and standby.lag_s is not None and standby.lag_s > 0
    assert standby.data_lag_s is not None
    follower.catch_up()
    report = policy_status(policy, keys)
    assert report.mirrors[0].standby.lag_s == 0
    metrics = report.to_prometheus()
    assert 'drorch_standby_lag_seconds{policy="e2e",mirror="m"' in metrics
    assert "drorch_standby_data_lag_seconds" in metrics


def test_promote_twice_keeps_what_the_copy_served(setup):
    policy, source, copy = setup
    _apply(policy)
    follower = Follower(policy, "m", log=lambda _: None)
    first = follower.promote()
    (copy / "served.txt").write_bytes(b"written at the DR site")
    (source / "late.txt").write_bytes(b"the old primary still wrote")
    _apply(policy)
    again = follower.promote()  # e.g. runbook resume re-running a finished promote
    assert again is not None and first is not None and again.snapshot == first.snapshot
    assert (copy / "served.txt").exists() and not (copy / "late.txt").exists()


def test_cli_once_promote_rejoin_and_status(tmp_path, dataset, drorch_env, make_policy, run_drorch,
                                            apply_ok, assert_same_tree):
    copy = tmp_path / "standby"
    policy = make_policy(tmp_path, dataset, tmp_path / "repo", filename="cli.yaml",
                         standby={"path": str(copy), "follow": "*/5 * * * *"})
    snapshot = apply_ok(policy, drorch_env)["snapshot"]
    done = run_drorch("standby", policy, "--mirror", "m", "--once", env=drorch_env)
    assert done.returncode == 0, done.stderr
    assert f"applied snapshot {snapshot[:8]}" in done.stdout
    assert_same_tree(dataset, copy)
    status = run_drorch("status", policy, env=drorch_env)
    assert status.returncode == 0 and "standby lag 0s" in status.stdout, status.stdout
    done = run_drorch("standby", policy, "--mirror", "m", "--promote", env=drorch_env)
    assert done.returncode == 0 and "promoted snapshot" in done.stdout, done.stderr
    refused = run_drorch("standby", policy, "--mirror", "m", "--once", env=drorch_env)
    assert refused.returncode == 1 and "was promoted and serves" in refused.stderr
    assert "Traceback" not in refused.stderr
    done = run_drorch("standby", policy, "--mirror", "m", "--rejoin", "--once", env=drorch_env)
    assert done.returncode == 0 and "rejoined" in done.stdout, done.stderr


def test_reverse_brings_the_served_data_home(setup, tmp_path, assert_same_tree):
    from drorch.runbook import RunOptions, run_runbook

    policy, source, copy = setup
    _apply(policy)
    Follower(policy, "m", log=lambda _: None).promote()
    (copy / "served.txt").write_bytes(b"written at the DR site")
    (copy / "text" / "notes.md").unlink()
    (source / "lost.txt").write_bytes(b"the primary's write that never replicated")
    kept = (source / "big.bin").stat().st_ino
    runbook = tmp_path / "failback.yaml"
    runbook.write_text("apiVersion: drorch/v1\nkind: Runbook\nmetadata: {name: back}\n"
                       "steps:\n  - name: reverse\n    reverse: {mirror: m}\n"
                       "  - name: rejoin\n    promote: {mirror: m, rejoin: true}\n")
    result = run_runbook(runbook, policy_path=tmp_path / "policy.yaml", options=RunOptions(yes=True))
    assert result.status == "succeeded", result.error
    outputs = result.steps[0].outputs
    assert outputs["path"] == str(source) and outputs["files_written"] == 1
    assert outputs["files_removed"] == 2  # notes.md (deleted at DR) and lost.txt
    assert_same_tree(copy, source)
    assert (source / "big.bin").stat().st_ino == kept
    assert result.steps[1].outputs["snapshot"] == outputs["snapshot"]  # the standby follows again
