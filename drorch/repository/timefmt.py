"""RFC 3339 timestamps with nanoseconds, as Go's encoding/json writes and reads them."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)$"
)


@lru_cache(maxsize=4096)
def _format_seconds(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@lru_cache(maxsize=65536)  # a node formats its mtime twice (as atime too); walks repeat times
def format_ns(ns: int) -> str:
    """Nanoseconds since the epoch as UTC RFC 3339, trailing zeros trimmed like Go."""
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = _format_seconds(seconds)
    if frac:
        stamp += "." + f"{frac:09d}".rstrip("0")
    return stamp + "Z"


def parse_ns(text: str) -> int:
    """Nanoseconds since the epoch from RFC 3339 with any fraction and offset."""
    match = _RFC3339.match(text)
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    base = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        base -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return int(base.timestamp()) * 1_000_000_000 + nanos


def now_ns() -> int:
    return time.time_ns()


def to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)
