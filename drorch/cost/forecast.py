"""Per target: how many bytes it will hold, what that costs a month, what a full restore costs.

A target holds one full copy of the source (after dedup and compression, from
``sample.estimate_source``) plus the data that changed during the period its
retention keeps: ``daily change x retained days``. The daily change comes from
the repository's own history (bytes each snapshot added, scaled by how well
the repository compresses), so a forecast sharpens as the mirror runs; with
no history yet it is the full copy alone, and says so.

With no retention rule every snapshot is kept and the target grows without
bound: the forecast is then the size after 30 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter

from drorch.cost.sample import SourceEstimate
from drorch.policy import Target
from drorch.policy.prices import PRICES_AS_OF, default_class, price_of

GB = 10**9
DAY_NS = 86_400 * 10**9
# Days one rule of a retention covers; ``last`` depends on the schedule (see retained_days).
_PERIOD_DAYS = {"hourly": 1 / 24, "daily": 1.0, "weekly": 7.0, "monthly": 30.44, "yearly": 365.25}
GROWTH_DAYS = 30.0


@dataclass(frozen=True)
class RepoHistory:
    """What a target's repository says about itself: bytes stored, bytes each snapshot added."""

    stored_bytes: int
    snapshots: tuple[tuple[int, int], ...]  # (time_ns, plaintext bytes added), oldest first

    def daily_change(self) -> int | None:
        """Stored bytes added per day over the history; None before two snapshots a minute apart."""
        if len(self.snapshots) < 2:
            return None
        span_ns = self.snapshots[-1][0] - self.snapshots[0][0]
        added = sum(b for _, b in self.snapshots)
        if span_ns < 60 * 10**9 or not added:
            return None
        stored_per_plain = min(1.0, self.stored_bytes / added)
        later = sum(b for _, b in self.snapshots[1:])  # the first one is the full copy
        return round(later * stored_per_plain * DAY_NS / span_ns)


@dataclass(frozen=True)
class TargetForecast:
    basis: str  # "sample", "whole source" or "sample + repository history"
    storage_class: str | None
    price_source: str  # the dated table, the policy's override, or "unknown"
    price_per_gb_month: float | None
    full_copy_bytes: int  # one full copy after dedup and compression
    stored_now_bytes: int | None  # what the target's repository holds today
    daily_change_bytes: int | None  # stored bytes added per day (from history)
    retained_days: float | None  # how far back retention keeps data; None: keeps everything
    forecast_bytes: int  # steady state (or after GROWTH_DAYS when retention keeps everything)
    monthly_cost: float | None  # USD
    restore_egress_cost: float | None  # USD for reading one full copy out of the store
    note: str | None = None


def retained_days(retention: dict[str, int], schedule: str | None) -> float | None:
    """How many days of changes retention keeps; None when it keeps every snapshot.

    ``last: N`` keeps N runs: N schedule intervals (a day each when the mirror
    has no cron schedule, i.e. runs by hand or continuously).
    """
    spans = [count * days for rule, count in retention.items() if count and
             (days := _PERIOD_DAYS.get(rule)) is not None]
    if retention.get("last"):
        spans.append(retention["last"] * _interval_days(schedule))
    return max(spans) if spans else None


def _interval_days(schedule: str | None) -> float:
    if not schedule or not croniter.is_valid(schedule):
        return 1.0
    runs = croniter(schedule, datetime(2026, 1, 5, tzinfo=UTC))
    first, second = runs.get_next(float), runs.get_next(float)
    return (second - first) / 86_400


def forecast_target(target: Target, estimate: SourceEstimate, retention: dict[str, int], *,
                    schedule: str | None = None, history: RepoHistory | None = None) -> TargetForecast:
    """The forecast for one target of a mirror (see the module docstring)."""
    store_class = target.storage_class or default_class(target.scheme)
    row = price_of(target.scheme, store_class)
    if target.price_per_gb_month is not None:
        price, source = target.price_per_gb_month, "policy (price_per_gb_month)"
    elif row is not None:
        price, source = row.storage_per_gb_month, f"price table of {PRICES_AS_OF}"
    else:
        price, source = None, "unknown"
    daily = history.daily_change() if history else None
    days = retained_days(retention, schedule)
    full = estimate.stored_bytes
    growth = (daily or 0) * (days if days is not None else GROWTH_DAYS)
    forecast = max(full + growth, history.stored_bytes if history and days is not None else 0)
    note = _note(price, daily, days, target)
    egress = None if row is None else full / GB * (row.egress_per_gb + row.retrieval_per_gb)
    basis = "whole source" if estimate.exact else "sample"
    if daily is not None:
        basis += " + repository history"
    return TargetForecast(basis, store_class, source, price, full,
                          history.stored_bytes if history else None, daily, days, round(forecast),
                          None if price is None else forecast / GB * price, egress, note)


def _note(price: float | None, daily: int | None, days: float | None, target: Target) -> str | None:
    if price is None:
        return (f"no price known for {target.scheme}:// targets; set price_per_gb_month on "
                f"target {target.name!r}")
    if days is None:
        return f"retention keeps every snapshot: the target grows without bound (shown: after " \
               f"{GROWTH_DAYS:.0f} days)"
    if daily is None:
        return "no history yet: changes retention will keep are not included"
    return None
