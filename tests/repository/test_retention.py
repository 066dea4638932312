from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drorch.repository.retention import apply_retention
from drorch.repository.snapshot import Snapshot

START = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)


def _snapshots(hours: list[int]) -> list[Snapshot]:
    out = []
    for index, hour in enumerate(hours):
        when = START - timedelta(hours=hour)
        out.append(Snapshot(int(when.timestamp() * 1e9), "t", ["/x"], id=f"s{index}"))
    return out


@pytest.mark.parametrize(
    ("rules", "hours_ago", "kept"),
    [
        ({}, [0, 1, 2], {"s0", "s1", "s2"}),  # no rule keeps everything
        ({"last": 2}, [0, 1, 2, 3], {"s0", "s1"}),
        ({"hourly": 2}, [0, 0.5, 1, 2], {"s0", "s1"}),  # newest per hour
        ({"daily": 2}, [0, 5, 24, 30, 48], {"s0", "s2"}),
        ({"monthly": 1, "last": 1}, [0, 1, 24 * 40], {"s0"}),
        ({"weekly": 2}, [0, 24, 24 * 7, 24 * 8, 24 * 30], {"s0", "s2"}),
        ({"yearly": 1, "daily": 1}, [0, 24 * 400], {"s0"}),
        ({"last": 1, "monthly": 2}, [0, 24 * 31 + 5], {"s0", "s1"}),
    ],
)
def test_retention_keeps_like_restic(rules: dict[str, int], hours_ago: list[float], kept: set[str]
                                     ) -> None:
    decision = apply_retention(_snapshots(hours_ago), rules)  # type: ignore[arg-type]
    assert {s.id for s in decision.keep} == kept
    assert {s.id for s in decision.forget} == {f"s{i}" for i in range(len(hours_ago))} - kept
