"""Mirrors in fleet mode, on a real engine with real agent processes.

Exactly once: one workflow ID per mirror, so a second start while one runs is
refused; an agent killed mid-upload (kill -9) or stopped (SIGTERM) has its job
finished by the host's other agent, the target gains exactly one snapshot,
and stock ``restic check --read-data`` accepts the repository.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest

from .helpers import (
    Fleet,
    history,
    make_data,
    no_overlap,
    restic_check,
    restic_snapshots,
    write_policy,
)
from support.processes import alive

pytestmark = [pytest.mark.slow, pytest.mark.restic]


def _data_puts(repo: Path) -> int:
    data = repo / "data"
    return sum(1 for _ in data.rglob("*") if _.is_file()) if data.exists() else 0


def test_run_status_and_a_dead_host(fleet: Fleet) -> None:
    source = make_data(fleet.tmp / "src", 1)
    policy = write_policy(fleet.tmp / "p.yaml", fleet.name, source, fleet.tmp / "repo", hosts=("web1", "dr1"))
    fleet.agent(policy, "web1")
    fleet.wait_for_pollers("web1")

    ran = json.loads(fleet.drorch("fleet", "run", policy, "--mirror", "web", "--wait", "--json").stdout)
    assert ran["workflow_id"] == f"mirror:{fleet.name}:web" and ran["result"]["snapshot"]
    assert ran["result"]["host"] == "web1"
    assert len(restic_snapshots(fleet.tmp / "repo", fleet.env["DRORCH_KEY"])) == 1

    # dr1 has no agent: status names it dead and exits 3, though the RPO is met
    proc = fleet.drorch("fleet", "status", policy, "--json", check=False)
    assert proc.returncode == 3, proc.stderr
    report = json.loads(proc.stdout)
    alive = {a["host"]: a["alive"] for a in report["agents"]}
    assert alive == {"web1": True, "dr1": False} and report["dead_hosts"] == ["dr1"]
    assert report["mirrors"][0]["targets"][0]["snapshot"] == ran["result"]["snapshot"]
    assert not report["mirrors"][0]["targets"][0]["breach"]
    metrics = fleet.drorch("fleet", "status", policy, "--format", "prometheus", check=False).stdout
    assert f'drorch_agent_up{{policy="{fleet.name}",host="dr1"}} 0' in metrics
    assert f'drorch_agent_up{{policy="{fleet.name}",host="web1"}} 1' in metrics

    fleet.agent(policy, "dr1")
    fleet.wait_for_pollers("dr1")
    assert fleet.drorch("fleet", "status", policy, check=False).returncode == 0


def test_one_workflow_per_mirror_and_schedules_reconcile(fleet: Fleet) -> None:
    source = make_data(fleet.tmp / "src", 17)
    repo = fleet.tmp / "repo"
    policy = write_policy(fleet.tmp / "p.yaml", fleet.name, source, repo, schedule="0 3 * * *",
                          mirrors="  - {name: old, source: data, targets: [local], rpo: 1d, "
                                  "schedule: \"0 4 * * *\"}\n")
    slow = {**fleet.env, "DRORCH_FLEET_TEST_PUT_DELAY_S": "10"}  # the scheduled job outlives the checks
    fleet.agent(policy, "web1", env=slow)
    fleet.wait_for_pollers("web1")

    applied = json.loads(fleet.drorch("fleet", "apply", policy, "--json").stdout)
    assert sorted(applied["created"]) == ["old", "web"]
    again = json.loads(fleet.drorch("fleet", "apply", policy, "--json").stdout)
    assert sorted(again["unchanged"]) == ["old", "web"] and not again["created"]

    async def trigger() -> None:
        from temporalio.client import ScheduleOverlapPolicy

        from drorch.fleet.engine_client import EngineConfig, connect

        client = await connect(EngineConfig(address=fleet.env["DRORCH_ENGINE"]))
        handle = client.get_schedule_handle(f"schedule:{fleet.name}:web")
        description = await handle.describe()
        assert description.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        await handle.trigger()

    asyncio.run(trigger())
    fleet.wait_for("the scheduled job to start", lambda: fleet.ledger_entries())
    # a manual run while the scheduled one goes is refused by the engine, not run twice
    second = json.loads(fleet.drorch("fleet", "run", policy, "--mirror", "web", "--json").stdout)
    assert second["already_running"] is True
    status = json.loads(fleet.drorch("fleet", "status", policy, "--json", check=False).stdout)
    running = {j["mirror"]: j for j in status["jobs"]}
    assert running["web"]["running"] and running["web"]["attempt"] == 1 and not running["old"]["running"]

    # --wait joins the scheduled run if it still goes (else it is a new run, after it)
    joined = json.loads(fleet.drorch("fleet", "run", policy, "--mirror", "web", "--wait", "--json").stdout)
    assert joined["result"]["snapshot"]
    expected = 1 if joined["already_running"] else 2
    assert len(restic_snapshots(repo, fleet.env["DRORCH_KEY"])) == expected
    no_overlap(fleet.ledger_entries(), "web")

    # re-apply without `old`: its schedule goes, web's stays
    write_policy(policy, fleet.name, source, repo, schedule="0 3 * * *")
    changed = json.loads(fleet.drorch("fleet", "apply", policy, "--json").stdout)
    assert changed["deleted"] == ["old"] and changed["unchanged"] == ["web"]


@pytest.mark.parametrize("how", ["kill-9", "sigterm"])
def test_agent_lost_mid_upload_second_agent_finishes_once(fleet: Fleet, how: str) -> None:
    """Two agents for one host; the one running the job dies (or is stopped) mid-upload."""
    source = make_data(fleet.tmp / "src", 40)
    repo = fleet.tmp / "repo"
    policy = write_policy(fleet.tmp / "p.yaml", fleet.name, source, repo)
    # each pack upload waits 8s: the second agent is up before the first pack lands
    slow = {**fleet.env, "DRORCH_FLEET_TEST_PUT_DELAY_S": "8"}
    first = fleet.agent(policy, "web1", env=slow, grace=0.5)
    fleet.wait_for_pollers("web1")
    fleet.drorch("fleet", "run", policy, "--mirror", "web")
    started = fleet.wait_for("the job on the first agent", lambda: fleet.ledger_entries())
    fleet.agent(policy, "web1")  # the second agent uploads at full speed
    fleet.wait_for_pollers("web1", count=2)
    fleet.wait_for("a pack uploaded", lambda: _data_puts(repo) >= 1, timeout=90, every=0.05)
    job_pid = started[0]["pid"]
    assert not [e for e in fleet.ledger_entries() if e["event"] == "end"], "the job ended too early"

    os.kill(first.pid, signal.SIGKILL if how == "kill-9" else signal.SIGTERM)
    if how == "sigterm":
        assert first.wait(30) == 0  # stopped cleanly, its job handed back
    fleet.wait_for("the first job process gone", lambda: not alive(job_pid), timeout=10, every=0.05)
    gone_at = time.time()

    joined = json.loads(fleet.drorch("fleet", "run", policy, "--mirror", "web", "--wait", "--json",
                                     timeout=180).stdout)
    result = joined["result"]
    reused = result["targets"][0]["packs_adopted"] >= 1 or result["targets"][0]["bytes_added"] < 20 * 2**20
    assert result["snapshot"] and reused  # the first agent's packs: adopted, or indexed before it stopped
    entries = fleet.ledger_entries()
    attempts = [e for e in entries if e["event"] == "start"]
    assert [a["attempt"] for a in attempts] == [1, 2], entries
    assert attempts[1]["agent"] != attempts[0]["agent"] and attempts[1]["t"] > gone_at
    if how == "sigterm":
        assert any(e.get("outcome") == "handed-back" for e in entries)
        no_overlap(entries, "web")

    snapshots = restic_snapshots(repo, fleet.env["DRORCH_KEY"])
    assert [s["short_id"] for s in snapshots] == [result["snapshot"][:8]]
    restic_check(repo, fleet.env["DRORCH_KEY"])
    events = asyncio.run(history(fleet.env["DRORCH_ENGINE"], joined["workflow_id"]))
    started_events = [e for e in events if e.HasField("activity_task_started_event_attributes")]
    assert [e.activity_task_started_event_attributes.attempt for e in started_events] == [2]
