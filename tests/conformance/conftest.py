"""Fixtures of the object-store conformance suite.

Each test gets a ``backend`` (store_backends.py: what it is, what it cannot be
tested for and why) and a ``store``: the raw adapter on a fresh bucket or
container, emptied again after the test. Emulators are session-scoped, on
127.0.0.1 with free ports (cloud_emulators.py), and always stopped.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from drorch.ports.store import ObjectStore


def load_beside(name: str) -> ModuleType:
    """A helper module next to this file, once, under its own name.

    pytest's importlib import mode puts no test folder on sys.path, so the suite's
    helpers are loaded by path; the test modules then import them by name.
    """
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


emulators = load_beside("cloud_emulators")
backends = load_beside("store_backends")
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
