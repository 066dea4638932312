"""Errors operators hit with cloud targets, through the CLI: one sentence on stderr, exit 1, no traceback.

Unknown bucket (every provider), wrong region and expired or invalid credentials
(S3, and a wrong Azure account key), endpoint unreachable, and the network cut
in the middle of an upload (the re-run resumes: less goes up, restic checks it).

Where the emulator cannot produce the failure itself, the fault proxy of
tests/support/cloud_emulators.py answers as the cloud does: moto never
answers 301 for a bucket in another region (it ignores the request's region),
and it has no notion of an expired session token. Invalid credentials and
Azure's wrong key are the emulators' own answers.

Tests that must exhaust retries run the CLI with a three-attempt retry budget
(``FAST_RETRIES``), so they do not sit through the production backoff.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support import cloud_targets as targets

moto_server_fixture = targets.moto_server_fixture
gcs_server_fixture = targets.gcs_server_fixture
azurite_server_fixture = targets.azurite_server_fixture

pytestmark = pytest.mark.slow

FAST_RETRIES = """\
import sys
from drorch.storage.retry import RetryingStore
RetryingStore.__init__.__kwdefaults__.update(attempts=3, max_wait_s=0.05)
from drorch.cli.app import main
sys.exit(main())
"""


def run_fast(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``drorch ARGS`` with a three-attempt retry budget (same CLI, shorter backoff)."""
    return subprocess.run([sys.executable, "-c", FAST_RETRIES, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def cloud_for(provider: str, request: pytest.FixtureRequest, tmp_path: Path, *, create: bool = True
              ) -> Any:
    if provider == "s3":
        return targets.s3_target(request.getfixturevalue("moto_server"), create=create)
    if provider == "gs":
        return targets.gcs_target(request.getfixturevalue("gcs_server"), create=create)
    if provider == "az":
        return targets.azure_target(request.getfixturevalue("azurite_server"), create=create)
    return targets.libcloud_target(tmp_path / "libcloud", create=create)


@pytest.fixture
def moto(moto_server):
    """The moto server, emptied (and IAM authentication off again) after the test."""
    yield moto_server
    moto_server.reset()


# ----------------------------------------------------------------------------- where the data goes


@pytest.mark.parametrize("provider", ["s3", "gs", "az", "libcloud"])
def test_unknown_bucket(provider, request, tmp_path, dataset, drorch_env, drorch_key, e2e):
    if provider == "libcloud":
        (tmp_path / "libcloud").mkdir()
    cloud = cloud_for(provider, request, tmp_path, create=False)
    policy = targets.write_policy(e2e, tmp_path, dataset, cloud)
    proc = e2e.run_drorch("apply", policy, env=drorch_env | cloud.env)
    e2e.assert_one_error(proc, 1, cloud.bucket, "does not exist", secret=drorch_key)


def test_wrong_region(moto, tmp_path, dataset, drorch_env, drorch_key, e2e):
    """S3 answers a request to the wrong regional endpoint with 301 PermanentRedirect and the
    bucket's region in x-amz-bucket-region; botocore follows that once, then gives up."""
    with targets.FaultProxy(moto.url) as proxy:
        proxy.fail_always(targets.s3_error(
            301, "PermanentRedirect", "The bucket you are attempting to access must be addressed using "
            "the specified endpoint.", **{"x-amz-bucket-region": "eu-west-1"}))
        cloud = targets.s3_target(moto, endpoint=proxy.url)
        cloud.region = "us-east-1"
        policy = targets.write_policy(e2e, tmp_path, dataset, cloud)
        proc = e2e.run_drorch("apply", policy, env=drorch_env | cloud.env)
    e2e.assert_one_error(proc, 1, cloud.bucket, "another region", "region", secret=drorch_key)


# ----------------------------------------------------------------------------- credentials


def test_invalid_access_key(moto, tmp_path, dataset, drorch_env, drorch_key, e2e):
    """With moto's IAM authentication on, an access key IAM never issued is refused (403)."""
    cloud = targets.s3_target(moto)
    cloud.env |= {"AWS_ACCESS_KEY_ID": "AKIANOTAREALKEY00000", "AWS_SECRET_ACCESS_KEY": "wrong"}
    policy = targets.write_policy(e2e, tmp_path, dataset, cloud)
    moto.require_auth(True)
    proc = e2e.run_drorch("apply", policy, env=drorch_env | cloud.env)
    # The first request is a HEAD, whose 403 carries no error code: the sentence says what to check.
    sentence = e2e.assert_one_error(proc, 1, cloud.bucket, "access denied", "credentials", secret=drorch_key)
    assert "wrong" not in sentence


def test_expired_session_token(moto, tmp_path, dataset, drorch_env, drorch_key, e2e):
    with targets.FaultProxy(moto.url) as proxy:
        proxy.fail_always(targets.s3_error(403, "ExpiredToken", "The provided token has expired."))
        cloud = targets.s3_target(moto, endpoint=proxy.url)
        cloud.env["AWS_SESSION_TOKEN"] = "expired-session-token"
        policy = targets.write_policy(e2e, tmp_path, dataset, cloud)
        proc = e2e.run_drorch("apply", policy, env=drorch_env | cloud.env)
    sentence = e2e.assert_one_error(proc, 1, cloud.bucket, "access denied", "expired", secret=drorch_key)
    assert "expired-session-token" not in sentence


def test_wrong_azure_account_key(azurite_server, tmp_path, dataset, drorch_env, drorch_key, e2e):
    """Azurite checks shared-key signatures: a wrong key is refused with 403 AuthorizationFailure."""
    cloud = targets.azure_target(azurite_server)
    cloud.env["AZURE_STORAGE_KEY"] = "bm90LXRoZS1hY2NvdW50LWtleQ=="
    policy = targets.write_policy(e2e, tmp_path, dataset, cloud)
    proc = e2e.run_drorch("apply", policy, env=drorch_env | cloud.env)
    sentence = e2e.assert_one_error(proc, 1, "access denied", "account key", secret=drorch_key)
    assert cloud.env["AZURE_STORAGE_KEY"] not in sentence


# ----------------------------------------------------------------------------- the network


@pytest.mark.parametrize("provider", ["s3", "gs", "az"])
def test_endpoint_unreachable(provider, request, tmp_path, dataset, drorch_env, drorch_key, e2e):
    cloud = cloud_for(provider, request, tmp_path)
    path = (cloud.endpoint or "").split("://", 1)[1].partition("/")[2]
    cloud.endpoint = f"http://127.0.0.1:{targets.closed_port()}/{path}".rstrip("/")
    if provider == "gs":
        cloud.env["STORAGE_EMULATOR_HOST"] = cloud.endpoint
    policy = targets.write_policy(e2e, tmp_path, dataset, cloud)
    proc = run_fast("apply", policy, env=drorch_env | cloud.env)
    e2e.assert_one_error(proc, 1, "unreachable", "endpoint", secret=drorch_key)


def test_network_cut_mid_upload_resumes_on_rerun(moto, tmp_path, drorch_env, drorch_key, e2e, restic,
                                                 monkeypatch):
    """The connection drops under every pack upload after the first: apply fails with one sentence;
    the re-run uploads only what is missing (what made it is reused), and restic checks the result."""
    source = tmp_path / "src"
    source.mkdir()
    total = 0
    for i in range(3):  # 36 MiB of incompressible data: three 16 MiB packs' worth
        data = e2e.random_bytes(12 * e2e.MiB, f"cut-{i}")
        (source / f"part-{i}.bin").write_bytes(data)
        total += len(data)

    def pack_upload(method: str, path: str) -> bool:
        return method == "PUT" and "/repo/data/" in path

    with targets.FaultProxy(moto.url) as proxy:
        cloud = targets.s3_target(moto, endpoint=proxy.url)
        env = drorch_env | cloud.env
        policy = targets.write_policy(e2e, tmp_path, source, cloud)
        proxy.cut_after(1, match=pack_upload)
        proc = run_fast("apply", policy, "--quiet", env=env)
        e2e.assert_one_error(proc, 1, "data/", cloud.url, secret=drorch_key)
        assert sum(pack_upload(*r) for r in proxy.seen) > 1, "no upload was cut"

        proxy.heal()
        rerun = e2e.apply_ok(policy, env)
    assert 0 < rerun["bytes_added"] < total, rerun

    client = moto.client()
    stored = sum(o["Size"] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=cloud.bucket, Prefix="repo/data/") for o in page.get("Contents", []))
    assert stored < total * 1.05, f"{stored} bytes of packs for {total} bytes of data: a pack went up twice"

    for key, value in cloud.env.items():
        monkeypatch.setenv(key, value)
    restic.check(f"s3:{moto.url}/{cloud.bucket}/repo", read_data=True)
