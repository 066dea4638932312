"""Every cloud target kind end to end through the CLI: apply → restore → verify --read-data.

One generated policy per provider (target URL and endpoint; credentials only in
the environment), each against its emulator on 127.0.0.1: s3:// on moto,
gs:// on gcp-storage-emulator, az:// on Azurite (account name + key + endpoint),
libcloud://local/ on libcloud's local driver. The restore must be
byte-identical, with metadata, to the source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support import cloud_targets as targets

moto_server_fixture = targets.moto_server_fixture
gcs_server_fixture = targets.gcs_server_fixture
azurite_server_fixture = targets.azurite_server_fixture

pytestmark = pytest.mark.slow


@pytest.fixture(params=["s3", "gs", "az", "libcloud"])
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "s3":
        return targets.s3_target(request.getfixturevalue("moto_server"))
    if request.param == "gs":
        return targets.gcs_target(request.getfixturevalue("gcs_server"))
    if request.param == "az":
        return targets.azure_target(request.getfixturevalue("azurite_server"))
    return targets.libcloud_target(tmp_path / "libcloud")


def test_apply_restore_verify_round_trip(cloud, tmp_path, dataset, drorch_env, e2e):
    env = drorch_env | cloud.env
    policy = targets.write_policy(e2e, tmp_path, dataset, cloud)

    first = e2e.apply_ok(policy, env)
    assert first["files_new"] == len(e2e.regular_files(dataset))
    again = e2e.apply_ok(policy, env)  # nothing changed: no file is read or uploaded again
    assert again["files_unmodified"] == first["files_new"], again
    assert again["bytes_added"] < first["bytes_added"] / 10, again

    listed = e2e.drorch_json("snapshots", policy, env=env)
    assert {s["id"] for s in listed["cloud"]} == {first["snapshot"], again["snapshot"]}

    restored = tmp_path / "restored"
    proc = e2e.run_drorch("restore", policy, first["snapshot"], "--to", restored, env=env)
    assert proc.returncode == 0, e2e.describe(proc)
    e2e.assert_same_tree(dataset, restored)

    proc = e2e.run_drorch("verify", policy, "--read-data", env=env)
    assert proc.returncode == 0, e2e.describe(proc)
