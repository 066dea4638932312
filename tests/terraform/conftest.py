"""Fixtures of the terraform/ module tests (all offline: no provider downloads)."""

from __future__ import annotations

import pytest

from .hcl import CLOUDS


@pytest.fixture(params=CLOUDS)
def cloud(request: pytest.FixtureRequest) -> str:
    """Each module in turn: aws, gcp, azure."""
    return str(request.param)
