"""Durations as operators write them: ``30s``, ``15m``, ``1h``, ``2h30m``, ``7d``, ``1w``.

One grammar for every duration in a policy (``rpo``, ``rto``, hook ``timeout``) so a
value that is valid in one place is valid everywhere. Units are written largest
first and at most once (``1h30m``, not ``30m1h``), which keeps every spelling
unambiguous and lets ``format_duration`` round-trip.
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration"]

# Longer than any objective or timeout means anything (and short of what datetime can add).
MAX_DURATION = timedelta(days=36_500)
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_UNIT_ORDER = "wdhms"
_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"(?:\d+[wdhms])+")


def parse_duration(text: str) -> timedelta:
    """Return the ``timedelta`` written as ``text``.

    Raises ``ValueError`` whose message names the bad value and shows the grammar,
    so callers can put it in front of an operator unchanged. Zero (``0s``) parses;
    whether zero makes sense is the caller's decision. More than ``MAX_DURATION``
    (100 years) is refused: it is a typo, and beyond it date arithmetic overflows.
    """
    if not isinstance(text, str) or not _WHOLE.fullmatch(text.strip()):
        raise ValueError(_invalid(text))
    parts = _PART.findall(text.strip())
    units = [unit for _, unit in parts]
    if units != sorted(set(units), key=_UNIT_ORDER.index):
        raise ValueError(_invalid(text))
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in parts)
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration '{text.strip()}' is longer than 100 years (36500d); "
                         "give a realistic value, e.g. 15m or 7d")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render ``value`` as ``parse_duration`` reads it (``2h30m``); sub-seconds are dropped."""
    remaining = int(value.total_seconds())
    if remaining <= 0:
        return "0s"
    out = []
    for unit in _UNIT_ORDER:
        count, remaining = divmod(remaining, _UNIT_SECONDS[unit])
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def _invalid(text: object) -> str:
    return f"invalid duration '{text}'; use a number with s, m, h, d or w, e.g. 15m"
