"""The one duration grammar used by rpo, rto and hook timeouts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from drorch.policy import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("2h30m", timedelta(hours=2, minutes=30)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("90m", timedelta(minutes=90)),
        ("0s", timedelta(0)),
        (" 5m ", timedelta(minutes=5)),
    ],
)
def test_parse(text: str, expected: timedelta):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["15x", "15", "m", "", "1.5h", "-5m", "30m1h", "1h1h", "1 h", "15M", "1y"]
)
def test_parse_rejects_with_the_grammar_in_the_message(text: str):
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == (
        f"invalid duration '{text}'; use a number with s, m, h, d or w, e.g. 15m"
    )


@pytest.mark.parametrize("text", ["30s", "15m", "2h30m", "1w2d3h4m5s", "1w"])
def test_format_round_trips(text: str):
    assert format_duration(parse_duration(text)) == text


def test_format_normalises():
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(0)) == "0s"
