"""The backends the object-store conformance suite runs against, one per adapter.

A backend knows how to make a fresh bucket (container, directory) on its
emulator and open the adapter on it — through ``drorch.ports.store.open_store`` by URL
scheme, then unwrapped from the retry wrapper so failures are seen as raised.

A backend that cannot do something lists it in ``unsupported`` (the test is
skipped with the reason); one whose emulator is known to get it wrong lists it
in ``emulator_lies``, and a known defect of an adapter is in ``adapter_bugs``
with its fix (both run as strict xfails, so a fix is noticed). None of them
weakens a test for the other backends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drorch.policy import Target
from drorch.storage import open_store
from drorch.storage.retry import RetryingStore

from support.cloud_emulators import (
    AZURE_SERVER_BUSY,
    GCS_BACKEND_ERROR,
    S3_SLOW_DOWN,
    Azurite,
    Canned,
    FaultProxy,
    GcsEmulator,
    MotoServer,
    gcs_error,
)

MiB = 1024 * 1024


def open_adapter(url: str, endpoint: str | None = None, env: dict[str, str] | None = None) -> Any:
    """The adapter the registry picks for ``url``, unwrapped from ``RetryingStore``."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        store = open_store(Target(name="conformance", url=url, endpoint=endpoint).store_config())
    assert isinstance(store, RetryingStore), "open_store must wrap every adapter in retries"
    return store.inner


def new_name() -> str:
    return f"drorch-{uuid.uuid4().hex[:12]}"


class Backend:
    name = ""
    http = True  # requests travel over HTTP: they can be proxied, throttled and counted
    throttled: Canned | None = None  # the backend's own "slow down" reply
    unsupported: dict[str, str] = {}
    emulator_lies: dict[str, str] = {}
    adapter_bugs: dict[str, str] = {}  # known defects of the adapter under test, each with its fix

    def new_bucket(self) -> str:
        raise NotImplementedError

    def open(self, bucket: str, prefix: str = "repo", endpoint: str | None = None) -> Any:
        raise NotImplementedError

    @property
    def upstream(self) -> str:
        raise NotImplementedError

    def cleanup(self, bucket: str) -> None:
        pass

    def small_parts(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """Lower the multipart threshold so a ~12 MiB object goes up in several requests."""
        store.multipart_threshold = 8 * MiB
        store.part_size = 4 * MiB

    @contextlib.contextmanager
    def denied(self, bucket: str) -> Iterator[Any]:
        """A store whose writes the backend refuses with "access denied"."""
        raise NotImplementedError
        yield

    def check(self, feature: str, request: pytest.FixtureRequest) -> None:
        if feature in ("throttling", "unreachable") and not self.http:
            pytest.skip(f"{self.name}: no network protocol between drorch and the data")
        if feature in self.unsupported:
            pytest.skip(f"{self.name}: {self.unsupported[feature]}")
        why = self.emulator_lies.get(feature) or self.adapter_bugs.get(feature)
        if why:
            request.applymarker(pytest.mark.xfail(reason=f"{self.name}: {why}", strict=True))


_ROOT_IGNORES_MODES = "running as root, which ignores file permissions, so nothing can be denied"


class LocalBackend(Backend):
    name = "local"
    http = False
    unsupported = {
        "missing_bucket": "a file:// target creates its directory on first write; there is no bucket",
        "access_denied": (_ROOT_IGNORES_MODES if os.geteuid() == 0 else
                          "providers/local.py reports EACCES as a plain StoreError, not AccessDenied"),
    }

    def __init__(self, base: Path) -> None:
        self.base = base

    def new_bucket(self) -> str:
        name = new_name()
        (self.base / name).mkdir()
        return name

    def open(self, bucket: str, prefix: str = "repo", endpoint: str | None = None) -> Any:
        return open_adapter(f"file://{self.base / bucket / prefix}")

    def cleanup(self, bucket: str) -> None:
        shutil.rmtree(self.base / bucket, ignore_errors=True)


class S3Backend(Backend):
    name = "s3"
    throttled = S3_SLOW_DOWN

    def __init__(self, moto: MotoServer) -> None:
        self.moto = moto

    @property
    def upstream(self) -> str:
        return self.moto.url

    def new_bucket(self) -> str:
        name = new_name()
        self.moto.create_bucket(name)
        return name

    def open(self, bucket: str, prefix: str = "repo", endpoint: str | None = None,
             env: dict[str, str] | None = None) -> Any:
        return open_adapter(f"s3://{bucket}/{prefix}", endpoint or self.moto.url, env or self.moto.env)

    def cleanup(self, bucket: str) -> None:
        self.moto.reset()

    def small_parts(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        store.multipart_threshold = 8 * MiB
        store.part_size = 5 * MiB  # S3's (and moto's) minimum part size

    @contextlib.contextmanager
    def denied(self, bucket: str) -> Iterator[Any]:
        """An IAM user allowed only to read, with moto's IAM authentication switched on."""
        iam = self.moto.client("iam")
        user = new_name()
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]}
        iam.put_user_policy(UserName=user, PolicyName="read-only", PolicyDocument=json.dumps(policy))
        env = self.moto.env | {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                               "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        self.moto.require_auth(True)
        try:
            yield self.open(bucket, env=env)
        finally:
            self.moto.require_auth(False)


class GcsBackend(Backend):
    name = "gcs"
    throttled = GCS_BACKEND_ERROR
    emulator_lies = {"exclusive": "gcp-storage-emulator ignores if_generation_match=0, so a second create "
                                  "overwrites (real GCS refuses it with 412)"}
    unsupported = {"exclusive_race": "gcp-storage-emulator has no conditional writes at all",
                   "pagination": "gcp-storage-emulator ignores maxResults and answers every list in one "
                                 "page, so paging cannot be exercised (and it slows down with each name)"}

    def __init__(self, gcs: GcsEmulator) -> None:
        self.gcs = gcs

    @property
    def upstream(self) -> str:
        return self.gcs.url

    def new_bucket(self) -> str:
        name = new_name()
        self.gcs.create_bucket(name)
        return name

    def open(self, bucket: str, prefix: str = "repo", endpoint: str | None = None) -> Any:
        return open_adapter(f"gs://{bucket}/{prefix}", endpoint, self.gcs.env)

    def cleanup(self, bucket: str) -> None:
        self.gcs.wipe()

    def small_parts(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        store.multipart_threshold = 4 * MiB
        store.part_size = 4 * MiB  # a multiple of 256 KiB, as resumable chunks must be

    @contextlib.contextmanager
    def denied(self, bucket: str) -> Iterator[Any]:
        """The emulator has no IAM: a proxy answers as GCS does for a role without objects.create."""
        with FaultProxy(self.gcs.url) as proxy:
            proxy.fail_always(gcs_error(403, "forbidden", "drorch-test does not have "
                                        "storage.objects.create access to the Google Cloud Storage object."))
            yield self.open(bucket, endpoint=proxy.url)


class AzureBackend(Backend):
    name = "azure"
    throttled = AZURE_SERVER_BUSY

    def __init__(self, azurite: Azurite) -> None:
        self.azurite = azurite

    @property
    def upstream(self) -> str:
        return self.azurite.url

    def new_bucket(self) -> str:
        name = new_name()
        self.azurite.create_container(name)
        return name

    def open(self, bucket: str, prefix: str = "repo", endpoint: str | None = None,
             key: str | None = None) -> Any:
        env = {"AZURE_STORAGE_CONNECTION_STRING": self.azurite.connection_string(
            endpoint, **({"key": key} if key else {}))}
        return open_adapter(f"az://{bucket}/{prefix}", env=env)

    def cleanup(self, bucket: str) -> None:
        self.azurite.delete_container(bucket)

    @contextlib.contextmanager
    def denied(self, bucket: str) -> Iterator[Any]:
        """Azurite checks shared-key signatures: a wrong account key is refused with 403."""
        import base64

        yield self.open(bucket, key=base64.b64encode(b"not-the-account-key" * 3).decode())


class LibcloudBackend(Backend):
    name = "libcloud"
    http = False
    unsupported = {
        "exclusive_race": "libcloud has no conditional write; exclusive puts check, then write (best "
                          "effort), so racing writers can both succeed",
        **({"access_denied": _ROOT_IGNORES_MODES} if os.geteuid() == 0 else {}),
    }

    def __init__(self, base: Path) -> None:
        self.base = base

    def new_bucket(self) -> str:
        name = new_name()
        (self.base / name).mkdir()
        return name

    def open(self, bucket: str, prefix: str = "repo", endpoint: str | None = None) -> Any:
        return open_adapter(f"libcloud://local/{bucket}/{prefix}",
                            env={"LIBCLOUD_LOCAL_PATH": str(self.base)})

    def cleanup(self, bucket: str) -> None:
        shutil.rmtree(self.base / bucket, ignore_errors=True)

    def small_parts(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        pass  # the generic driver API streams; there are no parts to configure

    @contextlib.contextmanager
    def denied(self, bucket: str) -> Iterator[Any]:
        folder = self.base / bucket
        folder.chmod(0o500)
        try:
            yield self.open(bucket)
        finally:
            folder.chmod(0o700)
