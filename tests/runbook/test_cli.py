"""``drorch runbook ...`` as an operator runs it: exit codes, one-sentence errors, kill -9 + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drorch.runbook import Journal

from .fakes import wait_for

HEAD = "apiVersion: drorch/v1\nkind: Runbook\nmetadata: {name: rb}\n"


def write(tmp_path: Path, steps: str, name: str = "rb.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + "steps:\n" + textwrap.indent(textwrap.dedent(steps), "  "))
    return path


def count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_run_success_prints_steps_and_rto(tmp_path: Path, drorch_env: dict[str, str],
                                         run_drorch: Callable[..., Any]):
    rb = write(tmp_path, """\
        - name: hello
          script: [echo, hi]
        - name: up
          wait: {command: ["true"]}
    """)
    proc = run_drorch("runbook", "run", rb, env=drorch_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "runbook rb  succeeded" in proc.stdout
    assert "measured RTO: " in proc.stdout


def test_failed_run_names_the_step_and_its_output(tmp_path: Path, drorch_env: dict[str, str],
                                                  run_drorch: Callable[..., Any],
                                                  assert_one_error: Callable[..., str]):
    undo_log = tmp_path / "undo.log"
    rb = write(tmp_path, f"""\
        - name: first
          script: [echo, ok]
          undo: {{script: [sh, -c, "echo undone >> {undo_log}"]}}
        - name: migrate
          script: [sh, -c, "echo connecting; echo 'FATAL: db is read-only'; exit 4"]
    """)
    proc = run_drorch("runbook", "run", rb, env=drorch_env)
    sentence = assert_one_error(proc, 1, "failed at step 'migrate' (script)", "exited with code 4",
                                "FATAL: db is read-only", "undid first")
    assert sentence.startswith("error: run ")
    assert "    | connecting\n    | FATAL: db is read-only" in proc.stdout  # the tail, on stdout
    assert undo_log.read_text() == "undone\n"


def test_invalid_runbook_exits_2_with_file_and_line(tmp_path: Path, drorch_env: dict[str, str],
                                                    run_drorch: Callable[..., Any]):
    rb = write(tmp_path, "- name: a\n  script: [echo, '{{ outputs.b.tail }}']\n")
    proc = run_drorch("runbook", "run", rb, env=drorch_env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: {rb}:6 steps[0].script[1]: unknown step 'b' in "
                                   "{{ outputs.b.tail }}; no step runs before this one")


def test_dry_run_touches_nothing(tmp_path: Path, drorch_env: dict[str, str],
                                 run_drorch: Callable[..., Any]):
    marker = tmp_path / "marker"
    rb = tmp_path / "rb.yaml"
    rb.write_text(HEAD + "vars: {who: a}\nsteps:\n"
                  f"  - name: touch\n    script: [touch, '{marker}-{{{{ vars.who }}}}']\n")
    proc = run_drorch("runbook", "run", rb, "--dry-run", "--var", "who=b", "--json", env=drorch_env)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["steps"][0]["summary"] == f"script touch {marker}-b"
    assert not list(tmp_path.glob("marker*"))
    assert not (Path(drorch_env["DRORCH_HOME"]) / "state.db").exists()


def _latest_run(env: dict[str, str]) -> str:
    journal = Journal(Path(env["DRORCH_HOME"]) / "state.db")
    return journal.runs(1)[0].id


def _kill_mid_step(tmp_path: Path, env: dict[str, str], start_drorch: Callable[..., Any],
                   rb: Path) -> str:
    """Start ``runbook run``, wait until step ``long`` runs, then kill -9 drorch and the step."""
    proc = start_drorch("runbook", "run", rb, env=env)
    try:
        wait_for(lambda: (tmp_path / "long.pid").exists() or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    # the host went down with it: the step's own process does not survive either
    os.killpg(int((tmp_path / "long.pid").read_text()), signal.SIGKILL)
    return _latest_run(env)


LONG = """\
- name: once
  script: [sh, -c, "echo x >> {d}/once.log"]
- name: long
  script:
    argv: [sh, -c, "if [ -f {d}/resume.ok ]; then echo x >> {d}/long.log;
                    else echo $$ > {d}/long.pid; sleep 30; fi"]
    idempotent: {idempotent}
- name: after
  script: [sh, -c, "echo x >> {d}/after.log"]
"""


def test_kill_9_mid_step_then_resume_never_repeats_finished_steps(
        tmp_path: Path, drorch_env: dict[str, str], start_drorch: Callable[..., Any],
        run_drorch: Callable[..., Any]):
    rb = write(tmp_path, LONG.format(d=tmp_path, idempotent="true"))
    run_id = _kill_mid_step(tmp_path, drorch_env, start_drorch, rb)
    journal = Journal(Path(drorch_env["DRORCH_HOME"]) / "state.db")
    states = {row.name: row.state for row in journal.steps(run_id).values()}
    assert states == {"once": "done", "long": "running"}
    assert journal.run(run_id).status == "running"

    (tmp_path / "resume.ok").touch()
    proc = run_drorch("runbook", "resume", run_id, env=drorch_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (count(tmp_path / "once.log"), count(tmp_path / "long.log"),
            count(tmp_path / "after.log")) == (1, 1, 1)
    assert journal.run(run_id).status == "succeeded"
    events = [e.event for e in journal.timeline(run_id)]
    assert events.count("run-started") == 1 and events.count("run-resumed") == 1


def test_kill_9_in_a_non_idempotent_step_asks_before_running_it_again(
        tmp_path: Path, drorch_env: dict[str, str], start_drorch: Callable[..., Any],
        run_drorch: Callable[..., Any], assert_one_error: Callable[..., str]):
    rb = write(tmp_path, LONG.format(d=tmp_path, idempotent="false"))
    run_id = _kill_mid_step(tmp_path, drorch_env, start_drorch, rb)
    (tmp_path / "resume.ok").touch()
    proc = run_drorch("runbook", "resume", run_id, env=drorch_env)
    assert_one_error(proc, 2, f"run {run_id}: step 'long' was interrupted mid-way", "not idempotent",
                     "--rerun-interrupted")
    assert count(tmp_path / "long.log") == 0
    proc = run_drorch("runbook", "resume", run_id[:5], "--rerun-interrupted", env=drorch_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (count(tmp_path / "once.log"), count(tmp_path / "long.log"),
            count(tmp_path / "after.log")) == (1, 1, 1)


def test_approve_from_another_terminal(tmp_path: Path, drorch_env: dict[str, str],
                                       start_drorch: Callable[..., Any],
                                       run_drorch: Callable[..., Any]):
    rb = write(tmp_path, """\
        - name: cutover
          approve: {message: "Switch DNS?"}
          timeout: 60s
        - name: after
          script: [echo, switched]
    """)
    proc = start_drorch("runbook", "run", rb, env=drorch_env)
    try:
        journal_path = Path(drorch_env["DRORCH_HOME"]) / "state.db"
        wait_for(lambda: journal_path.exists() and bool(Journal(journal_path).runs(1)) and any(
            e.event == "approval-waiting" for e in Journal(journal_path).timeline(_latest_run(drorch_env))))
        run_id = _latest_run(drorch_env)
        approved = run_drorch("runbook", "approve", run_id, env=drorch_env)
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.startswith(f"approved step 'cutover' of run {run_id} (one-time token ")
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stdout + stderr
    assert f"approve with: drorch runbook approve {run_id}" in stderr
    shown = run_drorch("runbook", "show", run_id, "--json", env=drorch_env)
    doc = json.loads(shown.stdout)
    assert doc["status"] == "succeeded"
    assert [e["event"] for e in doc["timeline"]][:4] == [
        "run-started", "step-started", "step-detail", "approval-waiting"]


@pytest.mark.parametrize("args", [("runbook", "resume", "ffffffff"), ("runbook", "approve", "ffffffff")])
def test_unknown_run_ids(args: tuple[str, ...], drorch_env: dict[str, str], run_drorch: Callable[..., Any],
                         assert_one_error: Callable[..., str]):
    proc = run_drorch(*args, env=drorch_env)
    assert_one_error(proc, 2, "no runbook run 'ffffffff'", "recent runs: none yet")


def test_help_lists_the_runbook_commands(drorch_env: dict[str, str], run_drorch: Callable[..., Any]):
    proc = run_drorch("--help", env=drorch_env)
    for command in ("runbook", "failover", "failback", "test"):
        assert command in proc.stdout
    proc = run_drorch("runbook", "--help", env=drorch_env)
    for command in ("run", "resume", "approve", "show"):
        assert command in proc.stdout
    assert subprocess.run  # keep the import honest for the helper signature


ROOT = Path(__file__).resolve().parents[2]


def test_failover_and_failback_dry_run_the_policys_runbooks(drorch_env: dict[str, str],
                                                           run_drorch: Callable[..., Any]):
    policy = ROOT / "policies" / "aws-dr.yaml"
    # no AWS credentials, and none looked up outside this machine (no instance metadata service)
    env = {k: v for k, v in drorch_env.items() if not k.startswith("AWS_")} | {
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    proc = run_drorch("failover", policy, "--dry-run", "--json", env=env)
    # the preflight names the first step whose needs are missing: the page has no credentials
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: preflight: step 'announce' (notify) would fail: sns arn:aws:sns:"
                                  "eu-west-1:123456789012:dr: no AWS credentials"), proc.stderr
    plan = json.loads(proc.stdout)
    checks = {(c["step"], c["what"]): c for c in plan["preflight"]["checks"]}
    data = checks[("vm", "data of mirror web")]  # the example mirror was never applied
    assert data["state"] == "failed" and data["detail"].startswith("cannot read mirror web at target local")
    assert plan["runbook"] == "failover-web"
    steps = {s["name"]: s for s in plan["steps"]}
    assert steps["vm"]["summary"] == "launch recovery web-vm (snapshot latest)"
    assert steps["vm"]["undo"] == "fence terminate <vm.instance_id>"
    assert steps["dns"]["summary"] == "dns A www.example.com. -> <vm.ip> ttl 60"
    proc = run_drorch("failback", policy, "--dry-run", "--var", "dr_instance=web-vm-dr", env=env)
    assert proc.returncode == 1 and "step 'restore' (restore) would fail" in proc.stderr, proc.stderr
    assert " 1. reverse: reverse bring mirror web-back's served data home (DR -> on-prem)" in proc.stdout
    assert not (Path(drorch_env["DRORCH_HOME"]) / "state.db").exists()


def test_failover_without_a_runbook(drorch_env: dict[str, str], run_drorch: Callable[..., Any],
                                    assert_one_error: Callable[..., str]):
    proc = run_drorch("failover", ROOT / "policies" / "quickstart.yaml", env=drorch_env)
    assert_one_error(proc, 2, "policy quickstart has no failover runbook",
                     "add runbooks: {failover: runbooks/failover.yaml}")


def test_list_shows_runs(tmp_path: Path, drorch_env: dict[str, str], run_drorch: Callable[..., Any]):
    rb = write(tmp_path, "- name: a\n  script: [echo, a]\n")
    assert run_drorch("runbook", "run", rb, env=drorch_env).returncode == 0
    proc = run_drorch("runbook", "list", "--json", env=drorch_env)
    [run] = json.loads(proc.stdout)
    assert (run["runbook"], run["status"]) == ("rb", "succeeded") and run["rto_s"] is not None
