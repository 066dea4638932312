"""Cloud targets for end-to-end tests: a fresh bucket on an emulator, its policy entry, its environment.

The emulators and the fault proxy live in ``support.cloud_emulators`` (one
server per session for every folder). Test modules import the emulator
fixtures (``*_fixture``) from here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from support import cloud_emulators as emulators

moto_server_fixture = emulators.moto_server_fixture
gcs_server_fixture = emulators.gcs_server_fixture
azurite_server_fixture = emulators.azurite_server_fixture
FaultProxy = emulators.FaultProxy
s3_error = emulators.s3_error
closed_port = emulators.closed_port


@dataclass
class CloudTarget:
    """Where a policy's one target points, and what the environment must hold to reach it."""

    url: str
    endpoint: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    bucket: str = ""
    region: str | None = None


def new_bucket_name() -> str:
    return f"drorch-e2e-{uuid.uuid4().hex[:10]}"


def s3_target(moto: Any, *, endpoint: str | None = None, create: bool = True) -> CloudTarget:
    bucket = new_bucket_name()
    if create:
        moto.create_bucket(bucket)
    return CloudTarget(f"s3://{bucket}/repo", endpoint or moto.url, dict(moto.env), bucket)


def gcs_target(gcs: Any, *, create: bool = True) -> CloudTarget:
    bucket = new_bucket_name()
    if create:
        gcs.create_bucket(bucket)
    return CloudTarget(f"gs://{bucket}/repo", gcs.url, dict(gcs.env), bucket)


def azure_target(azurite: Any, *, create: bool = True) -> CloudTarget:
    """Account name and key plus the endpoint (the connection-string path is the conformance suite's)."""
    container = new_bucket_name()
    if create:
        azurite.create_container(container)
    env = {"AZURE_STORAGE_ACCOUNT": emulators.AZURITE_ACCOUNT, "AZURE_STORAGE_KEY": emulators.AZURITE_KEY}
    return CloudTarget(f"az://{container}/repo", azurite.url, env, container)


def libcloud_target(base: Path, *, create: bool = True) -> CloudTarget:
    container = new_bucket_name()
    if create:
        (base / container).mkdir(parents=True)
    return CloudTarget(f"libcloud://local/{container}/repo", None, {"LIBCLOUD_LOCAL_PATH": str(base)},
                       container)


def write_policy(e2e: Any, tmp_path: Path, source: Path, target: CloudTarget, **overrides: Any) -> Path:
    """The standard one-target policy of tests/conftest.py, pointed at ``target``."""
    path = e2e.make_policy(tmp_path, source, tmp_path / "unused", target_url=target.url, target="cloud",
                           **overrides)
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    doc = yaml.load(path.read_text())
    extra = {"endpoint": target.endpoint, "region": target.region}
    doc["targets"][0].update({k: v for k, v in extra.items() if v})
    with open(path, "w") as fh:
        yaml.dump(doc, fh)
    return path
