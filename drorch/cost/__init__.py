"""What a policy will cost: stored bytes after dedup and compression, the monthly bill, a restore.

    (prices: the shipped, dated price table per store class, lives in ``policy.prices``)
    sample      a bounded sample of a source, chunked and compressed like ``apply`` would
    forecast    per target: bytes stored, what retention keeps, monthly cost, restore egress
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drorch import lazy

if TYPE_CHECKING:
    from drorch.cost.forecast import TargetForecast, forecast_target
    from drorch.cost.sample import SourceEstimate, estimate_source, scan_tree
    from drorch.policy.prices import PRICES_AS_OF, StorePrice, default_class, price_of, store_classes

# Imported on first use: `apply` needs only the sampler's pre-scan, not the forecast (croniter).
__getattr__ = lazy.exports(__name__, {
    "drorch.cost.forecast": ("TargetForecast", "forecast_target"),
    "drorch.cost.sample": ("SourceEstimate", "estimate_source", "scan_tree"),
    "drorch.policy.prices": ("PRICES_AS_OF", "StorePrice", "default_class", "price_of", "store_classes"),
})

__all__ = [
    "PRICES_AS_OF",
    "SourceEstimate",
    "StorePrice",
    "TargetForecast",
    "default_class",
    "estimate_source",
    "forecast_target",
    "price_of",
    "scan_tree",
    "store_classes",
]
