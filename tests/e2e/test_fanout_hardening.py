"""Fan-out to several targets when one is down (issue 16): order of publication and catch-up.

- sync, a target unusable before the source is read: nothing is read (the pre hook never
  runs) and nothing is committed anywhere;
- sync, a target failing while it takes the data: nothing is published anywhere;
- sync, a target failing when the snapshot file is published: the primary and the
  healthy secondary have it, the broken one does not (never ahead of the primary), and
  the next run catches it up;
- async, a secondary down for several runs: once back, it gets every missed snapshot,
  oldest first, with the primary's IDs, and restic checks it.

"Down" is real: a target whose path is a regular file, an S3 endpoint on a closed port
of 127.0.0.1, or a target whose ``index``/``snapshots`` folder a pre hook replaces with
a file after the targets were opened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from support import cloud_targets


def _policy(e2e: Any, tmp_path: Path, source: Path, repos: list[Path], *, mode: str = "sync",
            pre: list[str] | None = None) -> Path:
    path = e2e.make_policy(tmp_path, source, repos[0], mode=mode, target="t0",
                           **({"consistency": {"pre": pre}} if pre else {}))
    yaml = YAML(typ="safe", pure=True)
    doc = yaml.load(path.read_text())
    doc["targets"] = [{"name": f"t{i}", "url": f"file://{repo}"} for i, repo in enumerate(repos)]
    doc["mirrors"][0]["targets"] = [f"t{i}" for i in range(len(repos))]
    with path.open("w") as fh:
        yaml.dump(doc, fh)
    return path


def _snapshot_ids(repo: Path) -> set[str]:
    folder = repo / "snapshots"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def _apply(e2e: Any, policy: Path, env: dict[str, str], expect: int) -> dict[str, Any]:
    doc = e2e.drorch_json("apply", policy, "--yes", env=env, expect=expect)
    [mirror] = doc["mirrors"]
    return {t["target"]: t for t in mirror["targets"]}


@pytest.fixture
def three(tmp_path: Path, dataset: Path, drorch_env: dict[str, str], e2e: Any) -> list[Path]:
    """Three healthy targets that already hold one snapshot each (the same one)."""
    repos = [tmp_path / f"repo{i}" for i in range(3)]
    _apply(e2e, _policy(e2e, tmp_path, dataset, repos), drorch_env, 0)
    assert len({frozenset(_snapshot_ids(r)) for r in repos}) == 1
    return repos


@pytest.mark.parametrize("down", ["path is a file", "dead endpoint"])
def test_sync_target_down_before_reading_reads_and_commits_nothing(
        tmp_path, dataset, three, drorch_env, e2e, down):
    marker = tmp_path / "source-was-read"
    before = [_snapshot_ids(r) for r in three]
    policy = _policy(e2e, tmp_path, dataset, three, pre=["touch", str(marker)])
    env = dict(drorch_env)
    if down == "path is a file":
        three[2].rename(tmp_path / "repo2.moved")
        three[2].write_text("not a directory\n")
    else:
        yaml = YAML(typ="safe", pure=True)
        doc = yaml.load(policy.read_text())
        doc["targets"][2] = {"name": "t2", "url": "s3://drorch-gone/repo",
                             "endpoint": f"http://127.0.0.1:{cloud_targets.closed_port()}"}
        with policy.open("w") as fh:
            yaml.dump(doc, fh)
        env |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1"}
    proc = cloud_targets.run_fast("apply", policy, "--yes", "--json", env=env)
    assert proc.returncode == 1, e2e.describe(proc)
    [mirror] = json.loads(proc.stdout)["mirrors"]
    results = {t["target"]: t for t in mirror["targets"]}
    assert not marker.exists(), "the source was read although a sync target was known to be down"
    assert "t2" in results["t0"]["error"] and "nothing was read" in results["t0"]["error"]
    assert not results["t2"]["ok"]
    assert [_snapshot_ids(r) for r in three[:2]] == before[:2]


@pytest.mark.parametrize("sabotaged", ["index", "snapshots"])
def test_sync_secondary_never_ahead_of_primary(tmp_path, dataset, three, drorch_env, e2e, restic,
                                               sabotaged):
    """A pre hook (after the targets are opened) breaks target t2's ``index/`` or ``snapshots/``."""
    before = _snapshot_ids(three[0])
    (dataset / "new.bin").write_bytes(e2e.random_bytes(100_000, "new"))  # data t2 must take
    folder = three[2] / sabotaged
    hook = ["sh", "-c", f'mv "{folder}" "{folder}.aside" && echo broken > "{folder}"']
    results = _apply(e2e, _policy(e2e, tmp_path, dataset, three, pre=hook), drorch_env, 1)
    after = [_snapshot_ids(r) for r in three]
    assert not results["t2"]["ok"]
    if sabotaged == "index":  # the data could not reach t2: nothing published anywhere
        assert after[0] == after[1] == before
        return
    # the data reached every target; the snapshot is on the primary first, t2 only lags
    new = results["t0"]["snapshot"]
    assert after[0] == after[1] == before | {new}
    assert new not in after[2]
    folder.unlink()
    (three[2] / f"{sabotaged}.aside").rename(folder)
    results = _apply(e2e, _policy(e2e, tmp_path, dataset, three), drorch_env, 0)
    assert results["t2"]["snapshots_caught_up"] == 1
    assert _snapshot_ids(three[2]) == _snapshot_ids(three[0])
    restic.check(three[2])


def test_async_catch_up_copies_every_missed_snapshot_oldest_first(
        tmp_path, dataset, drorch_env, e2e, restic):
    repos = [tmp_path / "primary", tmp_path / "dr"]
    repos[1].write_text("the DR site is down\n")
    policy = _policy(e2e, tmp_path, dataset, repos, mode="async")
    for run in range(3):
        (dataset / "changing.txt").write_text(f"run {run}\n")
        results = _apply(e2e, policy, drorch_env, 3)  # 3: the DR copy is behind its RPO
        assert results["t0"]["ok"] and not results["t1"]["ok"]
    assert len(_snapshot_ids(repos[0])) == 3
    repos[1].unlink()
    results = _apply(e2e, policy, drorch_env, 0)
    assert results["t1"]["ok"] and results["t1"]["snapshots_caught_up"] == 3
    assert _snapshot_ids(repos[1]) == _snapshot_ids(repos[0])
    mine = restic.snapshots(repos[1])
    assert len(mine) == 4
    files = sorted((repos[1] / "snapshots").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    by_time = sorted(mine, key=lambda s: s["time"])
    assert [p.name for p in files] == [s["id"] for s in by_time], "not published oldest first"
    restic.check(repos[1])
