"""Retention: forget what the rules drop, prune what nothing needs, never touch other tools' data."""

from __future__ import annotations

import pytest


@pytest.mark.restic
def test_keep_last_two_of_four(tmp_path, dataset, drorch_env, restic, e2e):
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo, retention={"last": 2})

    other = e2e.build_dataset(tmp_path / "restic-only", seed=7, big_size=600_000)
    states: dict[str, dict] = {}
    results = []
    for round_ in range(4):
        (dataset / "text" / "readme.txt").write_bytes(f"round {round_}\n".encode() * (round_ + 1))
        (dataset / f"round-{round_}.bin").write_bytes(e2e.random_bytes(400_000, round_))
        if round_:
            (dataset / f"round-{round_ - 1}.bin").unlink()  # so old packs fall out of use
        result = e2e.apply_ok(policy, drorch_env)
        states[result["snapshot"]] = e2e.tree_state(dataset)
        results.append(result)
        if round_ == 0:
            # a snapshot made by restic itself, of another directory, in the same repository
            restic("backup", other, repo=repo)
            by_restic = next(s for s in restic.snapshots(repo) if s["id"] != result["snapshot"])
    ids = [r["snapshot"] for r in results]

    assert results[2]["forgotten"] == [ids[0]], results[2]
    assert results[3]["forgotten"] == [ids[1]], results[3]
    assert results[3]["packs_deleted"] >= 1, "forgetting should free at least one pack"

    mirror = e2e.drorch_json("snapshots", policy, "--mirror", "m", env=drorch_env)["local"]
    assert [s["id"] for s in mirror] == ids[2:]
    everything = e2e.drorch_json("snapshots", policy, env=drorch_env)["local"]
    assert {s["id"] for s in everything} == {*ids[2:], by_restic["id"]}, \
        "drorch forgot a snapshot it did not make"

    restic.check(repo, read_data=True)
    assert {s["id"] for s in restic.snapshots(repo)} == {*ids[2:], by_restic["id"]}

    oldest_kept = tmp_path / "oldest-kept"
    proc = e2e.run_drorch("restore", policy, ids[2], "--to", oldest_kept, "--quiet",
                          env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    e2e.assert_same_tree(states[ids[2]], oldest_kept)

    restic_out = tmp_path / "restic-out"
    restic("restore", by_restic["id"], "--target", restic_out, repo=repo)
    e2e.assert_same_tree(other, e2e.restic_restored_root(restic_out, other))


def test_plan_announces_what_retention_forgets(tmp_path, dataset, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo", retention={"last": 1})
    e2e.apply_ok(policy, drorch_env)
    plan = e2e.drorch_json("plan", policy, env=drorch_env)
    [target] = plan["mirrors"][0]["targets"]
    assert (target["snapshots"], target["forget"]) == (1, 1), plan
    dry = e2e.drorch_json("apply", policy, "--dry-run", env=drorch_env)
    assert dry["mirrors"][0]["targets"][0]["forget"] == 1
    assert len(e2e.drorch_json("snapshots", policy, env=drorch_env)["local"]) == 1


def test_without_retention_everything_is_kept(tmp_path, dataset, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo")
    for round_ in range(3):
        (dataset / "empty.txt").write_bytes(b"x" * round_)
        assert e2e.apply_ok(policy, drorch_env)["forgotten"] == []
    assert len(e2e.drorch_json("snapshots", policy, env=drorch_env)["local"]) == 3
