"""Runbooks across hosts: each step on the host it names, approve as a signal, and a run
that survives a killed agent and an engine restart without repeating a finished step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from drorch.fleet import devserver

from .helpers import Fleet, fleet_environment, make_data, write_policy

pytestmark = pytest.mark.slow

RUNBOOK = """apiVersion: drorch/v1
kind: Runbook
metadata: {{name: fleet-failover}}
steps:
  - name: first
    on: h1
    script: [sh, -c, "pwd >> {out}/first.log"]
  - name: gate
    approve: {{message: "switch over?"}}
  - name: second
    on: h2
    script: [sh, -c, "pwd >> {out}/second.log"]
  - name: third
    on: h1
    script: [sh, -c, "pwd >> {out}/third.log"]
"""


def _copy_for(agent_dir: Path, fleet: Fleet, out: Path) -> Path:
    """Each agent has its own copy of policy and runbook; a step's cwd says whose copy ran it."""
    agent_dir.mkdir()
    (agent_dir / "rb.yaml").write_text(RUNBOOK.format(out=out))
    return write_policy(agent_dir / "p.yaml", fleet.name, make_data(fleet.tmp / "src", 1), fleet.tmp / "repo",
                        hosts=("h1", "h2"), runbooks="runbooks: {failover: rb.yaml}\n")


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_unknown_host_in_a_step_is_a_validation_error(fleet: Fleet) -> None:
    out = fleet.tmp / "out"
    policy = _copy_for(fleet.tmp / "a", fleet, out)
    (fleet.tmp / "a" / "rb.yaml").write_text(RUNBOOK.format(out=out).replace("on: h2", "on: h9"))
    proc = fleet.drorch("failover", policy, "--fleet", check=False)
    assert proc.returncode == 2
    assert "rb.yaml:11 steps[2].on: unknown host 'h9' in the policy; known: h1, h2, local" in proc.stderr


def test_runbook_survives_killed_agent_and_engine_restart(fleet: Fleet, tmp_path: Path) -> None:
    server = devserver.start(None, tmp_path / "own-engine.db")  # this test restarts its engine
    try:
        env = fleet_environment(tmp_path / "home", fleet.env["DRORCH_KEY"], server.address, fleet.ledger)
        out = tmp_path / "out"
        out.mkdir()
        a1, b, a2 = (_copy_for(tmp_path / n, fleet, out) for n in ("a1", "b", "a2"))
        first = fleet.agent(a1, "h1", env=env)
        fleet.agent(b, "h2", env=env)
        run = subprocess.Popen([sys.executable, "-m", "drorch", "failover", str(a1), "--fleet",
                                "--host", "h1", "--json"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        assert run.stderr is not None
        run_id = run.stderr.readline().split()[2]
        assert run_id.startswith("fleet-")
        fleet.wait_for("the first step", lambda: _lines(out / "first.log"), timeout=60)

        os.kill(first.pid, signal.SIGKILL)  # the agent of h1 dies while the run waits at the gate
        server.stop()
        server = devserver.start(server.port, server.db)  # same port, same SQLite file
        fleet.agent(a2, "h1", env=env)

        approved = fleet.drorch("runbook", "approve", run_id, env=env, timeout=60)
        assert "approved fleet run" in approved.stdout
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stdout + stderr
        assert _lines(out / "first.log") == [str(tmp_path / "a1")]  # never repeated
        assert _lines(out / "second.log") == [str(tmp_path / "b")]  # ran on h2's agent
        assert _lines(out / "third.log") == [str(tmp_path / "a2")]  # h1's new agent
    finally:
        server.stop()


def test_an_approve_whose_when_is_false_is_skipped_in_fleet_mode(fleet: Fleet) -> None:
    out = fleet.tmp / "out"
    out.mkdir()
    policy = _copy_for(fleet.tmp / "a", fleet, out)
    gated = RUNBOOK.format(out=out).replace(
        '    approve: {message: "switch over?"}',
        '    approve: {message: "switch over?"}\n    when: "{{ vars.confirm }} == yes"')
    (fleet.tmp / "a" / "rb.yaml").write_text("vars: {confirm: \"no\"}\n" + gated)
    fleet.agent(policy, "h1", "h2")
    proc = fleet.drorch("failover", policy, "--fleet", "--host", "h1", "--json", timeout=120)
    result = json.loads(proc.stdout)
    steps = {s["name"]: s["state"] for s in result["steps"]}
    assert steps == {"first": "done", "gate": "skipped", "second": "done", "third": "done"}, proc.stdout

    # the run is in `runbook show` and `runbook list --fleet`, read back from the engine
    shown = json.loads(fleet.drorch("runbook", "show", result["run_id"], "--json").stdout)
    assert shown["status"] == "succeeded" and [s["host"] for s in shown["steps"]] == ["h1", "h1", "h2", "h1"]
    text = fleet.drorch("runbook", "show", result["run_id"]).stdout
    assert f"fleet run {result['run_id']}" in text and "skipped" in text, text
    listed = json.loads(fleet.drorch("runbook", "list", "--fleet", "--json").stdout)
    assert result["run_id"] in [r["id"] for r in listed], listed
    missing = fleet.drorch("runbook", "show", "fleet-000000000000", check=False)
    assert missing.returncode == 2 and "no fleet run fleet-000000000000" in missing.stderr, missing.stderr
