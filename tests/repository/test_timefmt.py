from __future__ import annotations

import pytest

from drorch.repository.timefmt import format_ns, parse_ns


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2014-12-22T14:47:59.912418701+01:00", 1419256079912418701),
        ("2015-01-02T18:10:50.8952085+01:00", 1420218650895208500),
    ],
)
def test_parses_go_rfc3339(text: str, ns: int) -> None:
    assert parse_ns(text) == ns


def test_format_round_trips_nanoseconds() -> None:
    for ns in (0, 1, 1_700_000_000_123_456_789, 1_700_000_000_100_000_000):
        assert parse_ns(format_ns(ns)) == ns
    assert format_ns(1_700_000_000_100_000_000).endswith(".1Z")
