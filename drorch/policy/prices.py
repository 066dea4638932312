"""The shipped price table: list prices per store class, in US dollars, dated.

Prices are the public list prices of the first tier in the providers' main US
regions (AWS us-east-1, GCP us-central1, Azure East US locally redundant)
on ``PRICES_AS_OF``. They are a forecast's input, not a quote: regions, tiers,
discounts and taxes differ, so a target can set ``price_per_gb_month:`` to
override the storage price, and every forecast says which table (and date) or
override it used. GB here is 10^9 bytes, as billed.

``egress_per_gb`` is internet egress (a restore to a site outside the cloud);
``retrieval_per_gb`` is the per-GB read fee of the colder classes. A restore
of N GB costs N x (egress + retrieval).
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2026-11-01"


@dataclass(frozen=True)
class StorePrice:
    scheme: str  # s3, gs, az, file
    store_class: str  # as written in ``storage_class:``
    storage_per_gb_month: float
    retrieval_per_gb: float
    egress_per_gb: float


_TABLE: tuple[StorePrice, ...] = (
    StorePrice("s3", "STANDARD", 0.023, 0.0, 0.09),
    StorePrice("s3", "STANDARD_IA", 0.0125, 0.01, 0.09),
    StorePrice("s3", "GLACIER_IR", 0.004, 0.03, 0.09),
    StorePrice("gs", "STANDARD", 0.020, 0.0, 0.12),
    StorePrice("gs", "NEARLINE", 0.010, 0.01, 0.12),
    StorePrice("gs", "COLDLINE", 0.004, 0.02, 0.12),
    StorePrice("az", "HOT", 0.0184, 0.0, 0.087),
    StorePrice("az", "COOL", 0.010, 0.01, 0.087),
    StorePrice("az", "COLD", 0.0036, 0.03, 0.087),
    # Your own disk: no bill from a provider (the disk itself is a capital cost).
    StorePrice("file", "LOCAL", 0.0, 0.0, 0.0),
)

_DEFAULT_CLASS = {"s3": "STANDARD", "gs": "STANDARD", "az": "HOT", "file": "LOCAL"}


def store_classes(scheme: str) -> tuple[str, ...]:
    """The classes the table knows for a URL scheme (empty for libcloud: set a price)."""
    return tuple(p.store_class for p in _TABLE if p.scheme == scheme)


def default_class(scheme: str) -> str | None:
    """The class a store uses when none is asked for (what a bucket's objects get by default)."""
    return _DEFAULT_CLASS.get(scheme)


def price_of(scheme: str, store_class: str | None) -> StorePrice | None:
    """The table's row for ``scheme`` and ``store_class`` (its default when None); None if unknown."""
    wanted = (store_class or default_class(scheme) or "").upper()
    for price in _TABLE:
        if price.scheme == scheme and price.store_class == wanted:
            return price
    return None
