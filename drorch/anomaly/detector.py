"""The robust detector: is this apply far outside what the mirror usually does?

For each measure (share of files changed, new, deleted; new bytes as a share
of the source; the share of new data that did not compress) the limit is

    median(history) + max(K x 1.4826 x MAD(history), FLOOR)

over the last ``WINDOW`` judged applies of the mirror that were not flagged
(or were acknowledged as legitimate). Median and MAD ignore the odd big day
that a mean and standard deviation would learn from; the floor keeps a
perfectly regular history (MAD 0) from flagging the first small deviation;
a minimum count (files, bytes) keeps a 10-file mirror from flagging one edit.
Nothing is judged before ``MIN_HISTORY`` applies with a parent: a new mirror
has no normal yet.

The incompressible share is judged only when the incompressible new data is
at least ``INCOMPRESSIBLE_VOLUME`` of the source: one new JPEG on a quiet day
is 100% incompressible and perfectly normal; a third of a share rewritten
with ciphertext is not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import median

from drorch.anomaly.stats import ChangeStats

K = 6.0
MIN_HISTORY = 8
WINDOW = 60
MIN_FILES = 10
MIN_BYTES = 256 * 1024
INCOMPRESSIBLE_VOLUME = 0.05


@dataclass(frozen=True)
class Measure:
    what: str  # "of files changed", for "31% of files changed (usual 2%)"
    value: Callable[[ChangeStats], float]
    floor: float  # the least excess over the median that can count as abnormal
    enough: Callable[[ChangeStats], bool]  # is there enough volume to judge at all


MEASURES = (
    Measure("of files changed", lambda s: s.changed_share, 0.10, lambda s: s.files_changed >= MIN_FILES),
    Measure("of files new", lambda s: s.new_share, 0.25, lambda s: s.files_new >= MIN_FILES),
    Measure("of files deleted", lambda s: s.deleted_share, 0.10, lambda s: s.files_deleted >= MIN_FILES),
    Measure("of the source's bytes new", lambda s: s.bytes_new_share, 0.15,
            lambda s: s.bytes_new >= MIN_BYTES),
    Measure("of new data incompressible", lambda s: s.incompressible_share, 0.30,
            lambda s: s.bytes_incompressible >= max(MIN_BYTES, INCOMPRESSIBLE_VOLUME * s.bytes_before)),
)


def judge(current: ChangeStats, history: list[ChangeStats]) -> list[str]:
    """Why ``current`` is abnormal given ``history`` (oldest first); empty when it is not."""
    usable = [s for s in history if s.has_parent][-WINDOW:]
    if not current.has_parent or len(usable) < MIN_HISTORY:
        return []
    reasons = []
    for measure in MEASURES:
        values = [measure.value(s) for s in usable]
        centre = median(values)
        spread = 1.4826 * median(abs(v - centre) for v in values)
        limit = centre + max(K * spread, measure.floor)
        value = measure.value(current)
        if value > limit and measure.enough(current):
            reasons.append(f"{value:.0%} {measure.what} (usual {centre:.0%}, limit {limit:.0%})")
    return reasons
