"""SPEC §4 on S3: what ``drorch apply`` writes to ``s3://`` the stock restic reads from the same bucket.

drorch writes through the moto server; restic (``-r s3:http://127.0.0.1:PORT/bucket/prefix``,
credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) must pass
``check --read-data`` and restore byte-identically.
"""

from __future__ import annotations

import pytest

from support import cloud_targets as targets

moto_server_fixture = targets.moto_server_fixture

pytestmark = [pytest.mark.restic, pytest.mark.slow]


def test_restic_checks_and_restores_what_drorch_wrote_to_s3(
        moto_server, tmp_path, dataset, drorch_env, restic, e2e, monkeypatch):
    cloud = targets.s3_target(moto_server)
    policy = targets.write_policy(e2e, tmp_path, dataset, cloud)
    result = e2e.apply_ok(policy, drorch_env | cloud.env)

    for key, value in cloud.env.items():  # restic reads its S3 credentials from the environment
        monkeypatch.setenv(key, value)
    repo = f"s3:{moto_server.url}/{cloud.bucket}/repo"
    restic.check(repo, read_data=True)
    [snap] = restic.snapshots(repo)
    assert snap["id"] == result["snapshot"]

    out = tmp_path / "restic-out"
    restic("restore", "latest", "--target", out, repo=repo)
    e2e.assert_same_tree(dataset, e2e.restic_restored_root(out, dataset))
