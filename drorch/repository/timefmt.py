"""RFC 3339 timestamps with nanoseconds, as Go's encoding/json writes and reads them.

Go's ``time.Time`` JSON encoding only accepts years 0000-9999. restic therefore
clamps a file time outside that range into it before saving the node
(``fixTime`` in restic's node.go: the year becomes 9999 or 0000, month, day and
clock are kept, Go's ``AddDate`` normalising 29 February). drorch does the same,
so a file dated in year 10000, 36812 or before year 0 is saved like restic saves
it instead of failing the snapshot. The calendar arithmetic is done here rather
than with ``datetime``, whose range (years 1-9999) is narrower than Go's.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from functools import lru_cache

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)$"
)
_DAY_S = 86400
MAX_YEAR = 9999  # Go's time.Time MarshalJSON refuses years outside 0..9999
MIN_YEAR = 0


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01, proleptic Gregorian, any year."""
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a date; month and day may overflow (Go's ``Date`` normalises)."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_IN_RANGE_NS = range(-62167219200 * 1_000_000_000, 253402300800 * 1_000_000_000)  # 0000-01-01 .. 10000-01-01


def clamp_year_ns(ns: int) -> int:
    """``ns`` with its year moved into 0000-9999, as restic's ``fixTime`` does."""
    if ns in _IN_RANGE_NS:  # every real file time: no calendar arithmetic
        return ns
    seconds, frac = divmod(ns, 1_000_000_000)
    days, clock = divmod(seconds, _DAY_S)
    year, month, day = _civil_from_days(days)
    if MIN_YEAR <= year <= MAX_YEAR:
        return ns
    year = MAX_YEAR if year > MAX_YEAR else MIN_YEAR
    return (_days_from_civil(year, month, day) * _DAY_S + clock) * 1_000_000_000 + frac


@lru_cache(maxsize=4096)
def _format_seconds(seconds: int) -> str:
    days, clock = divmod(seconds, _DAY_S)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(clock, 3600)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}"


@lru_cache(maxsize=65536)  # a node formats its mtime twice (as atime too); walks repeat times
def format_ns(ns: int) -> str:
    """Nanoseconds since the epoch as UTC RFC 3339, trailing zeros trimmed like Go.

    Years outside 0000-9999 are clamped first (see the module docstring).
    """
    seconds, frac = divmod(clamp_year_ns(ns), 1_000_000_000)
    stamp = _format_seconds(seconds)
    if frac:
        stamp += "." + f"{frac:09d}".rstrip("0")
    return stamp + "Z"


def parse_ns(text: str) -> int:
    """Nanoseconds since the epoch from RFC 3339 with any fraction and offset; ValueError if not one."""
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    m, d, hh, mm, ss = int(month), int(day), int(hour), int(minute), int(second)
    if not (1 <= m <= 12 and 1 <= d <= 31 and hh < 24 and mm < 60 and ss < 61):
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    seconds = _days_from_civil(int(year), m, d) * _DAY_S + hh * 3600 + mm * 60 + ss
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


def now_ns() -> int:
    return time.time_ns()


def to_datetime(ns: int) -> datetime:
    """A datetime for display and calendar rules; clamped into datetime's own range."""
    seconds = clamp_year_ns(ns) / 1e9
    low, high = -62135596800, 253402300799  # 0001-01-01 .. 9999-12-31T23:59:59
    return datetime.fromtimestamp(min(max(seconds, low), high), UTC)
