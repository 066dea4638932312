"""Fixtures of the object-store conformance suite.

Each test gets a ``backend`` (support/store_backends.py: what it is, what it cannot be
tested for and why) and a ``store``: the raw adapter on a fresh bucket or
container, emptied again after the test. Emulators are session-scoped, on
127.0.0.1 with free ports (support/cloud_emulators.py), and always stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drorch.ports.store import ObjectStore

from support import cloud_emulators as emulators
from support import store_backends as backends

moto_server_fixture = emulators.moto_server_fixture
gcs_server_fixture = emulators.gcs_server_fixture
azurite_server_fixture = emulators.azurite_server_fixture

BACKENDS = ["local", "s3", "gcs", "azure", "libcloud"]


@pytest.fixture(scope="session")
def conformance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conformance")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, conformance_dir: Path) -> Any:
    kind = request.param
    if kind in ("local", "libcloud"):
        base = conformance_dir / kind
        base.mkdir(exist_ok=True)
        return backends.LocalBackend(base) if kind == "local" else backends.LibcloudBackend(base)
    if kind == "s3":
        return backends.S3Backend(request.getfixturevalue("moto_server"))
    if kind == "gcs":
        return backends.GcsBackend(request.getfixturevalue("gcs_server"))
    return backends.AzureBackend(request.getfixturevalue("azurite_server"))


@pytest.fixture
def bucket(backend: Any) -> Iterator[str]:
    """A fresh, empty bucket (container, directory) for this test only."""
    name = backend.new_bucket()
    try:
        yield name
    finally:
        backend.cleanup(name)


@pytest.fixture
def store(backend: Any, bucket: str) -> ObjectStore:
    return backend.open(bucket)
