"""The engine against fakes: order, outputs, retries, deadlines, when, undo, resume, approvals."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drorch.ports.errors import RunNotResumable, StepFailed
from drorch.runbook import Journal, RunOptions, RunResult, resume_run
from drorch.runbook.runner import approve_run, plan_runbook

from .fakes import FakeBackends, wait_for
from support.processes import alive

Run = Callable[..., RunResult]
Write = Callable[..., Path]


def counter_script(path: Path, fail_times: int = 0) -> str:
    """argv that appends a line to ``path`` and fails while it has at most ``fail_times`` lines."""
    return (f'[sh, -c, "echo x >> {path}; test $(wc -l < {path}) -gt {fail_times}"]')


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_steps_pass_outputs_and_the_journal_records_them(run: Run, write_runbook: Write,
                                                         journal: Journal, backends: FakeBackends):
    rb = write_runbook("""\
        - name: one
          script:
            argv: [sh, -c, 'echo hi; echo "port=8080" >> "$DRORCH_OUTPUTS"']
            outputs: [port]
        - name: up
          wait: {tcp: "db:{{ outputs.one.port }}"}
        - name: tell
          notify: {webhook: "http://hooks/x", message: "{{ vars.who }} up on {{ outputs.one.port }}"}
    """, vars="{who: web}")
    result = run(rb)
    assert result.status == "succeeded" and result.exit_code == 0
    assert [(s.name, s.state, s.attempts) for s in result.steps] == [
        ("one", "done", 1), ("up", "done", 1), ("tell", "done", 1)]
    assert result.steps[0].outputs == {"exit_code": 0, "tail": "hi", "port": "8080"}
    assert backends.prober.probes == ["db:8080"]
    assert backends.notify.sent == [("http://hooks/x", "web up on 8080")]
    events = [(e.event, e.step) for e in journal.timeline(result.run_id)]
    assert events[0] == ("run-started", None) and events[-1] == ("run-succeeded", None)
    assert ("wait-passed", "up") in events
    rows = journal.steps(result.run_id)
    up = rows[("do", 1)]
    first = rows[("do", 0)]
    assert result.rto_s == pytest.approx(up.finished - first.started)
    assert journal.run(result.run_id).rto_s == result.rto_s


def test_retries_with_backoff_then_success(run: Run, write_runbook: Write, tmp_path: Path):
    count = tmp_path / "count"
    rb = write_runbook(f"- name: flaky\n  script: {counter_script(count, fail_times=2)}\n  retries: 3\n")
    result = run(rb)
    assert result.status == "succeeded"
    assert result.steps[0].attempts == 3 and lines(count) == 3
    retries = [e.detail for e in result.timeline if e.event == "attempt-failed"]
    assert len(retries) == 2 and "sh exited with code 1" in retries[0]


def test_permanent_failures_are_not_retried(run: Run, write_runbook: Write):
    rb = write_runbook("- name: nope\n  script: [/no/such/cmd]\n  retries: 5\n")
    result = run(rb)
    assert result.status == "failed"
    assert result.steps[0].attempts == 1
    assert result.error == "command not found: /no/such/cmd; give an absolute path or put it on PATH"


def test_timeout_kills_the_script_and_its_children(run: Run, write_runbook: Write, tmp_path: Path):
    pids = tmp_path / "pids"
    rb = write_runbook(f"""\
        - name: slow
          script: [sh, -c, "sleep 60 & echo $! > {pids}; echo started; wait"]
          timeout: 1s
    """)
    started = time.monotonic()
    result = run(rb)
    assert time.monotonic() - started < 6
    assert result.status == "failed"
    assert result.error == ("timed out after 1s (1 attempt) "
                            "(sh was still running at the deadline and was killed)")
    assert result.steps[0].tail == "started"
    child = int(pids.read_text())
    wait_for(lambda: not alive(child), timeout=5)


def test_a_hung_provider_call_is_abandoned_at_the_deadline(run: Run, write_runbook: Write,
                                                           write_policy: Write, backends: FakeBackends):
    backends.compute("aws", "eu-west-1").hang = True
    rb = write_runbook("- name: vm\n  launch: {recovery: web-vm}\n  timeout: 1s\n")
    started = time.monotonic()
    result = run(rb, policy_path=write_policy())
    assert time.monotonic() - started < 4
    assert result.error == "timed out after 1s (1 attempt) (launch did not finish before the deadline)"


def test_wait_probes_every_interval_until_the_timeout(run: Run, write_runbook: Write,
                                                      backends: FakeBackends):
    backends.prober.healthy = lambda target: False
    rb = write_runbook("- name: up\n  wait: {http: 'http://web/health', interval: 1s}\n  timeout: 2s\n")
    result = run(rb)
    assert result.status == "failed"
    assert len(backends.prober.probes) in (2, 3)
    assert result.error.startswith("timed out after 2s (")
    assert result.error.endswith("; last error: http://web/health: HTTP 503, expected 200")


def test_when_skips_and_a_skipped_output_fails_clearly(run: Run, write_runbook: Write):
    rb = write_runbook("""\
        - name: maybe
          script: [echo, hi]
          when: "{{ vars.env }} == prod"
        - name: always
          script: [echo, "{{ vars.env }}"]
          when: "{{ vars.env }}"
        - name: uses
          script: [echo, "{{ outputs.maybe.tail }}"]
    """, vars="{env: test}")
    result = run(rb)
    assert [(s.name, s.state) for s in result.steps] == [
        ("maybe", "skipped"), ("always", "done"), ("uses", "failed")]
    assert result.error == "step 'maybe' was skipped (its when: was false), so {{ outputs.maybe.tail }} " \
                           "has no value"


def test_undo_runs_newest_first_and_every_undo_is_tried(run: Run, write_runbook: Write, tmp_path: Path):
    log = tmp_path / "undo.log"
    rb = write_runbook(f"""\
        - name: a
          script: [echo, a]
          undo: {{script: [sh, -c, "echo undo-a >> {log}"]}}
        - name: b
          script: [echo, b]
          undo: {{script: [sh, -c, "echo undo-b >> {log}; exit 3"]}}
        - name: c
          script: [echo, c]
        - name: d
          script: [sh, -c, "echo boom; exit 1"]
          undo: {{script: [sh, -c, "echo undo-d >> {log}"]}}
    """)
    result = run(rb)
    assert result.status == "failed-undo"
    assert log.read_text().split() == ["undo-b", "undo-a"]  # d failed, so it is not undone
    assert [(u.name, u.state) for u in result.undo] == [("b", "failed"), ("a", "done")]
    assert result.failed_step == "d" and result.failed is not None and result.failed.tail == "boom"


def test_no_undo_stops_and_resume_continues_without_repeating(run: Run, write_runbook: Write,
                                                              tmp_path: Path, journal: Journal,
                                                              backends: FakeBackends):
    first, gate = tmp_path / "first", tmp_path / "gate"
    rb = write_runbook(f"""\
        - name: once
          script: [sh, -c, "echo x >> {first}"]
          undo: {{script: ["false"]}}
        - name: check
          script: [test, -f, {gate}]
        - name: after
          script: [echo, "{{{{ outputs.once.exit_code }}}}"]
    """)
    result = run(rb, opts={"no_undo": True})
    assert result.status == "stopped" and result.undo == []
    gate.touch()
    resumed = resume_run(result.run_id, journal=journal, backends=backends,
                         options=RunOptions(backoff_base=0.01))
    assert resumed.status == "succeeded" and resumed.run_id == result.run_id
    assert lines(first) == 1
    assert [e.event for e in resumed.timeline].count("run-resumed") == 1
    with pytest.raises(RunNotResumable) as caught:
        resume_run(result.run_id, journal=journal, backends=backends)
    assert str(caught.value) == (f"run {result.run_id} has status succeeded and cannot be resumed; "
                                 "start a new run with `drorch runbook run`")


def test_resume_refuses_an_interrupted_non_idempotent_step(run: Run, write_runbook: Write,
                                                           journal: Journal, backends: FakeBackends,
                                                           tmp_path: Path):
    rb = write_runbook("- name: a\n  script: [echo, a]\n- name: b\n  script: ['false']\n")
    result = run(rb, opts={"no_undo": True})
    # what the journal holds after a crash while b was running
    journal.step_state(result.run_id, "do", 1, "b", "script", "running")
    journal.update_run(result.run_id, status="running")
    with pytest.raises(RunNotResumable) as caught:
        resume_run(result.run_id, journal=journal, backends=backends)
    assert re.fullmatch(
        f"run {result.run_id}: step 'b' was interrupted mid-way \\(its process was pid \\d+\\) and is "
        "not idempotent, so it may have done part of its work; check what it did, then resume with "
        "--rerun-interrupted to run it again", str(caught.value)), str(caught.value)
    rb.write_text(rb.read_text().replace("['false']", "[echo, b]"))
    resumed = resume_run(result.run_id, journal=journal, backends=backends,
                         options=RunOptions(rerun_interrupted=True))
    assert resumed.status == "succeeded"


def test_resume_refuses_when_finished_steps_changed(run: Run, write_runbook: Write, journal: Journal,
                                                   backends: FakeBackends):
    rb = write_runbook("- name: a\n  script: [echo, a]\n- name: b\n  script: ['false']\n")
    result = run(rb, opts={"no_undo": True})
    rb.write_text(rb.read_text().replace("name: a", "name: a2"))
    with pytest.raises(RunNotResumable) as caught:
        resume_run(result.run_id, journal=journal, backends=backends)
    assert "rb.yaml changed since the run started: step 1 was 'a' (script)" in str(caught.value)


def test_a_run_in_progress_cannot_be_resumed_twice(run: Run, write_runbook: Write, journal: Journal,
                                                   backends: FakeBackends):
    rb = write_runbook("- name: a\n  script: ['false']\n")
    result = run(rb, opts={"no_undo": True})
    with journal.lock(result.run_id), pytest.raises(RunNotResumable) as caught:
        resume_run(result.run_id, journal=journal, backends=backends)
    assert str(caught.value) == (f"run {result.run_id} is in progress in another process; "
                                 "wait for it, or stop that process first")


def test_approve_gate_waits_for_a_one_time_token(write_runbook: Write, journal: Journal,
                                                 backends: FakeBackends):
    from drorch.runbook import run_runbook

    rb = write_runbook("""\
        - name: first
          approve: {message: "go?"}
        - name: second
          approve: {message: "really?"}
          timeout: 1s
    """)
    results: list[RunResult] = []
    options = RunOptions(approval_poll_s=0.05, backoff_base=0.01)
    worker = threading.Thread(target=lambda: results.append(
        run_runbook(rb, journal=journal, backends=backends, options=options)))
    worker.start()
    wait_for(lambda: any(e.event == "approval-waiting" for r in journal.runs(1)
                         for e in journal.timeline(r.id)))
    run_id = journal.runs(1)[0].id
    _, gate, token = approve_run(run_id, journal=journal)
    assert gate == "first" and token
    worker.join(10)
    [result] = results
    # the token passed one gate only; the second timed out waiting
    assert [(s.name, s.state) for s in result.steps] == [("first", "done"), ("second", "failed")]
    assert result.steps[0].outputs["approved_by"].endswith(f"(token {token[:4]}…)")
    assert result.error == "timed out after 1s (1 attempt) (timed out waiting for approval (really?))"


def test_yes_passes_gates(run: Run, write_runbook: Write):
    result = run(write_runbook("- name: g\n  approve: {message: ok?}\n"), opts={"yes": True})
    assert result.steps[0].outputs == {"approved_by": "--yes"}


def test_rto_is_compared_with_the_recovery_objective(run: Run, write_runbook: Write, write_policy: Write):
    rb = write_runbook("""\
        - name: vm
          launch: {recovery: web-vm, snapshot: none}
          undo: {fence: {instance: "{{ outputs.vm.instance_id }}", recovery: web-vm, action: terminate}}
        - name: slow
          script: [sleep, "1.2"]
        - name: up
          wait: {http: "http://{{ outputs.vm.ip }}/health"}
    """)
    result = run(rb, policy_path=write_policy(rto="1s"))
    assert result.status == "succeeded"
    assert result.rto_objective_s == 1 and result.rto_s is not None and result.rto_s > 1.2
    assert result.rto_met is False and result.exit_code == 3
    assert result.steps[0].outputs["ip"] == "10.0.0.1"


def test_launch_undo_terminates_and_retry_does_not_launch_twice(run: Run, write_runbook: Write,
                                                                 write_policy: Write,
                                                                 backends: FakeBackends):
    compute = backends.compute("aws", "eu-west-1")
    rb = write_runbook("""\
        - name: vm
          launch: {recovery: web-vm}
          undo: {fence: {instance: "{{ outputs.vm.instance_id }}", recovery: web-vm, action: terminate}}
        - name: up
          wait: {http: "http://{{ outputs.vm.ip }}/health", interval: 1s}
          retries: 1
    """)
    backends.prober.healthy = lambda target: False
    result = run(rb, policy_path=write_policy())
    assert result.status == "failed"
    assert [m.state for m in compute.machines.values()] == ["terminated"]
    spec = compute.specs[0]
    assert spec.token == f"drorch-{result.run_id}-vm" and spec.mirror == "web"
    assert spec.tags["drorch:run"] == result.run_id and spec.subnet == "dr-a"


def test_dry_run_resolves_vars_and_marks_outputs(write_runbook: Write, write_policy: Write):
    rb = write_runbook("""\
        - name: vm
          launch: {recovery: web-vm}
        - name: dns
          dns: {zone: "{{ vars.zone }}", record: www, value: "{{ outputs.vm.ip }}"}
          when: "{{ vars.switch }}"
        - name: page
          notify: {webhook: "http://h/", message: "{{ outputs.vm.ip }} up"}
          when: "{{ outputs.vm.ip }}"
    """, vars="{zone: example.com., switch: 'yes'}")
    plan = plan_runbook(rb, write_policy(), {"switch": "no"})
    assert [(s.name, s.summary, s.runs) for s in plan.steps] == [
        ("vm", "launch recovery web-vm (snapshot latest)", "yes"),
        ("dns", "dns A www.example.com. -> <vm.ip> ttl 60", "no (when: {{ vars.switch }})"),
        ("page", "notify webhook http://h/: '<vm.ip> up'",
         "decided at run time (when: {{ outputs.vm.ip }})"),
    ]


def test_a_step_that_renders_invalid_fails_before_running(run: Run, write_runbook: Write):
    rb = write_runbook("- name: up\n  wait: {tcp: '{{ vars.addr }}'}\n", vars="{addr: nohost}")
    result = run(rb)
    assert result.error == ("after templates were filled in, wait.tcp is invalid: invalid tcp address "
                            "'nohost'; use host:port, e.g. db.internal:5432")


def test_provider_errors_carry_their_hint(run: Run, write_runbook: Write, write_policy: Write,
                                         backends: FakeBackends):
    backends.compute("aws", "eu-west-1").fail = StepFailed(
        "not allowed to call ec2:RunInstances", hint="grant it", permanent=True)
    result = run(write_runbook("- name: vm\n  launch: {recovery: web-vm}\n  retries: 3\n"),
                 policy_path=write_policy())
    assert result.error == "not allowed to call ec2:RunInstances; grant it"
    assert result.steps[0].attempts == 1


def test_resume_finishes_an_undo_that_a_crash_interrupted(run: Run, write_runbook: Write, tmp_path: Path,
                                                          journal: Journal, backends: FakeBackends):
    log = tmp_path / "undo.log"
    rb = write_runbook(f"""\
        - name: a
          script: [echo, a]
          undo: {{script: [sh, -c, "echo undo-a >> {log}"]}}
        - name: b
          script: [echo, b]
          undo: {{script: [sh, -c, "echo undo-b >> {log}"]}}
        - name: c
          script: ["false"]
    """)
    result = run(rb, opts={"no_undo": True})
    # as if the process died after undoing b, while it was about to undo a
    journal.step_state(result.run_id, "undo", 1, "b", "script", "done")
    journal.update_run(result.run_id, status="undoing")
    resumed = resume_run(result.run_id, journal=journal, backends=backends)
    assert resumed.status == "failed"
    assert log.read_text().split() == ["undo-a"]
    assert [(u.name, u.state) for u in resumed.undo] == [("b", "done"), ("a", "done")]


def test_fence_undoes_itself_unless_the_step_says_otherwise(run: Run, write_runbook: Write, tmp_path: Path,
                                                           backends: FakeBackends):
    """Built-in undo: a script fence runs its start argv; an instance fence starts what was running;
    a step's own undo replaces the built-in one; a terminate has nothing to undo."""
    from drorch.ports.recovery import Machine

    log = tmp_path / "fence.log"
    compute = backends.compute("aws", "eu-west-1")
    for name in ("primary", "spare", "old"):
        compute.machines[name] = Machine(name, "running")
    rb = write_runbook(f"""\
        - name: onprem
          fence: {{script: [sh, -c, "echo stop >> {log}"], start: [sh, -c, "echo start >> {log}"]}}
        - name: primary
          fence: {{instance: primary, region: eu-west-1}}
        - name: spare
          fence: {{instance: spare, region: eu-west-1}}
          undo: {{script: [sh, -c, "echo own-undo >> {log}"]}}
        - name: old
          fence: {{instance: old, region: eu-west-1, action: terminate}}
        - name: boom
          script: ["false"]
    """)
    result = run(rb)
    assert result.status == "failed" and result.failed_step == "boom"
    assert [u.name for u in result.undo] == ["spare", "primary", "onprem"]  # newest first; old: none
    assert log.read_text().split() == ["stop", "own-undo", "start"]
    assert compute.machines["primary"].state == "running"  # started again
    assert compute.machines["spare"].state == "stopped"  # its own undo did not start it
    assert compute.machines["old"].state == "terminated"
    plan = {s.name: s.undo for s in plan_runbook(rb, None, {}).steps}
    assert plan["primary"] == "fence start primary again if it was running (built-in)"
    assert plan["onprem"] == "fence script sh -c 'echo start >> " + str(log) + "' (built-in)"
    assert plan["old"] is None
