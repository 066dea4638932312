"""Fleet fixtures: the session's Temporal dev server, and one ``Fleet`` per test (see helpers)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("temporalio")

from drorch.fleet import devserver  # noqa: E402

from .helpers import Fleet, fleet_environment  # noqa: E402


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devserver.DevServer]:
    db = tmp_path_factory.mktemp("engine") / "engine.db"
    server = devserver.start(None, db)
    yield server
    server.stop()


@pytest.fixture
def fleet(request: pytest.FixtureRequest, tmp_path: Path, engine: devserver.DevServer,
          drorch_key: str) -> Iterator[Fleet]:
    name = re.sub(r"[^A-Za-z0-9-]", "-", request.node.name)[:40].strip("-")
    ledger = tmp_path / "ledger.jsonl"
    the_fleet = Fleet(tmp_path, name, fleet_environment(tmp_path / "home", drorch_key, engine.address,
                                                        ledger), ledger)
    yield the_fleet
    the_fleet.stop()
