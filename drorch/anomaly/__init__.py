"""Catching the attack in the data: ransomware and mass deletion, from each mirror's own history.

    stats       ChangeStats: what one apply changed (files new, changed, deleted; bytes new;
                the share of new data that did not compress)
    detector    judge(): median and MAD over the mirror's history, reasons when far outside
    store       AnomalyStore: the history, the verdicts and the acknowledgements (state DB)
    hold        retention keeps every snapshot older than an unacknowledged flagged one
    alert       the notification (SNS, webhook) named by the policy's ``alerts:``
"""

from __future__ import annotations

from drorch.anomaly.detector import judge
from drorch.anomaly.hold import hold_back
from drorch.anomaly.stats import ChangeStats
from drorch.anomaly.store import AnomalyStore, Flag

__all__ = ["AnomalyStore", "ChangeStats", "Flag", "hold_back", "judge"]
