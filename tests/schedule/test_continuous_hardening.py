"""Continuous mode (issue 16): a snapshot at start, changes made while down, an idle mirror's RPO.

Runs the real scheduler (``run_schedule``) with the real job runner on a local
repository; the debounce comes from the policy (``mirrors[].debounce``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from drorch.engine.connect import open_repository
from drorch.engine.operations import restore
from drorch.engine.status import policy_status
from drorch.policy import load_policy
from drorch.repository.snapshot import load_snapshots
from drorch.schedule import run_schedule
from drorch.secrets import key_source
from drorch.state.captured import Captured, CaptureLedger

POLICY = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: cont}
encryption: {key: env:DRORCH_KEY}
sources:
  - {name: live, type: directory, path: live}
targets:
  - {name: local, url: file://repo}
mirrors:
  - name: hot
    source: live
    targets: [local]
    rpo: 2s
    schedule: continuous
    debounce: {quiet: 0.1, max_delay: 1}
"""


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRORCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DRORCH_KEY", "continuous-test-key")
    (tmp_path / "live").mkdir()
    (tmp_path / "live" / "a.txt").write_text("first\n")
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def _snapshots(policy_path: Path) -> list:
    policy = load_policy(policy_path)
    repo = open_repository(policy, "local", key_source(policy.encryption))
    return sorted(load_snapshots(repo), key=lambda s: s.time_ns)


def _wait(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@contextmanager
def _scheduler(policy_path: Path, home: Path) -> Iterator[list[str]]:
    stop, lines = threading.Event(), []
    thread = threading.Thread(target=run_schedule, args=(policy_path, stop),
                              kwargs={"home": home, "log": lines.append, "grace_s": 30}, daemon=True)
    thread.start()
    try:
        yield lines
    finally:
        stop.set()
        thread.join(60)


def _repo_exists(policy_path: Path) -> bool:
    return (policy_path.parent / "repo" / "config").exists()


def test_first_snapshot_at_start_and_changes_made_while_down(policy: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with _scheduler(policy, home) as lines:
        _wait(lambda: _repo_exists(policy) and len(_snapshots(policy)) == 1)
        assert any("start: capturing" in line for line in lines), lines
    (tmp_path / "live" / "a.txt").write_text("changed while the scheduler was down\n")
    with _scheduler(policy, home):
        _wait(lambda: len(_snapshots(policy)) == 2)
    loaded = load_policy(policy)
    restore(loaded, key_source(loaded.encryption), "latest", tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").read_text() == "changed while the scheduler was down\n"


def test_idle_mirror_is_not_an_rpo_breach_while_watched(policy: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    loaded = load_policy(policy)
    keys = key_source(loaded.encryption)
    ledger = CaptureLedger(home / "state.db")
    with _scheduler(policy, home):
        _wait(lambda: _repo_exists(policy) and len(_snapshots(policy)) == 1)
        time.sleep(3)  # longer than the 2s RPO, with nothing written
        _wait(lambda: ledger.get("cont", "hot") is not None)
        report = policy_status(loaded, keys, captured=ledger)
        [target] = report.mirrors[0].targets
        assert target.age_s is not None and target.age_s > 2
        assert not report.breach, report.to_json()
        assert target.uncaptured_s is not None and target.uncaptured_s <= 2
    time.sleep(3)  # nobody confirms any more: the mirror breaches
    assert policy_status(loaded, keys, captured=ledger).breach


@pytest.mark.parametrize(("clean_since", "confirmed_at", "snapshot_at", "expected"), [
    (100.0, 190.0, 101.0, 10.0),  # snapshot holds every change, confirmed 10s ago
    (100.0, 190.0, 99.0, 101.0),  # the newest snapshot predates the clean point: its age counts
    (100.0, 120.0, 101.0, 80.0),  # a stale confirmation ages like a snapshot
])
def test_captured_age(clean_since: float, confirmed_at: float, snapshot_at: float,
                      expected: float) -> None:
    assert Captured(clean_since, confirmed_at).age_s(snapshot_at, 200.0) == expected
