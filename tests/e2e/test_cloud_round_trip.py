"""Every cloud target kind end to end through the CLI: apply → restore → verify --read-data.

One generated policy per provider (target URL and endpoint; credentials only in
the environment), each against its emulator on 127.0.0.1: s3:// on moto,
gs:// on gcp-storage-emulator, az:// on Azurite (account name + key + endpoint),
libcloud://local/ on libcloud's local driver. The restore must be
byte-identical, with metadata, to the source.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest


def _load_beside(name: str) -> Any:
    """A helper module next to this file (pytest's importlib mode puts no test folder on sys.path)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


targets = _load_beside("cloud_targets")
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
