from __future__ import annotations

from pathlib import Path

import pytest

from drorch.providers.local import LocalStore
from drorch.repository.repository import Repository


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository.init(LocalStore(tmp_path / "repo"), b"pw", "test")
