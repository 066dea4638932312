"""The detector itself, on hand-made statistics: when it judges, what counts as abnormal."""

from __future__ import annotations

import dataclasses

import pytest

from drorch.anomaly import ChangeStats, hold_back, judge
from drorch.anomaly.detector import MIN_HISTORY
from drorch.repository.snapshot import Snapshot

MiB = 1 << 20


def day(i: int, **changes: int) -> ChangeStats:
    base = {"files_new": 2 + i % 3, "files_changed": 5 + i % 4, "files_deleted": i % 2,
            "bytes_new": 600_000 + 10_000 * (i % 5), "bytes_incompressible": 50_000 * (i % 3)}
    base.update(changes)
    return ChangeStats(f"s{i:03d}", i * 10**9, True, 300, 3 * MiB, **base)  # type: ignore[arg-type]


HISTORY = [day(i) for i in range(20)]


def test_no_judgement_before_the_minimum_history() -> None:
    attack = day(99, files_changed=100)
    assert judge(attack, HISTORY[:MIN_HISTORY - 1]) == []
    assert judge(attack, HISTORY[:MIN_HISTORY]) != []


def test_a_first_snapshot_is_never_judged() -> None:
    first = dataclasses.replace(day(0, files_new=300), has_parent=False)
    assert judge(first, HISTORY) == []


@pytest.mark.parametrize(("changes", "words"), [
    ({"files_changed": 90}, "of files changed"),
    ({"files_deleted": 120}, "of files deleted"),
    ({"files_new": 150}, "of files new"),
    ({"bytes_new": 3 * MiB}, "bytes new"),
    ({"bytes_new": 1_300_000, "bytes_incompressible": 1_200_000}, "incompressible"),
])
def test_each_measure_flags_its_outlier(changes: dict[str, int], words: str) -> None:
    reasons = judge(day(50, **changes), HISTORY)
    assert any(words in r for r in reasons), reasons


@pytest.mark.parametrize("changes", [
    {"files_changed": 12},  # a busy day, not an attack
    {"files_deleted": 9},  # below the minimum count
    {"files_new": 40},  # a batch of uploads
    {"bytes_new": 900_000, "bytes_incompressible": 120_000},  # one new image: too little volume
])
def test_ordinary_busy_days_are_not_flagged(changes: dict[str, int]) -> None:
    assert judge(day(50, **changes), HISTORY) == []


def test_flagged_runs_do_not_become_the_new_normal() -> None:
    """A second encrypted run is still abnormal: the history it is judged on excludes the first."""
    attack = day(60, files_changed=90)
    assert judge(attack, HISTORY) and judge(dataclasses.replace(attack, snapshot="s061"), HISTORY)


def test_retention_hold_keeps_what_precedes_the_flag() -> None:
    snaps = [Snapshot(t * 10**9, "", [], id=f"id{t}") for t in range(6)]
    forget, kept = hold_back(snaps, hold_ns=3 * 10**9)
    assert [s.id for s in forget] == ["id4", "id5"]
    assert len(kept) == 4 and "drorch ack" in kept[0]
    assert hold_back(snaps, None) == (snaps, [])
