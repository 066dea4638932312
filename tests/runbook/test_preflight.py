"""``--dry-run`` is a preflight: each step's needs are checked against real services (a moto
server with scaffolding only, a real BIND, the repository), and the step that would fail is named.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drorch.runbook import preflight_runbook
from drorch.runbook.preflight import Preflight

RUNBOOK = """\
apiVersion: drorch/v1
kind: Runbook
metadata: {name: failover}
vars: {primary: web-primary}
steps:
  - name: announce
    notify: {sns: "arn:aws:sns:eu-west-1:123456789012:dr", message: starting}
  - name: data
    restore: {mirror: web, to: /srv/www}
  - name: vm
    launch: {recovery: web-vm, snapshot: none}
  - name: healthy
    wait: {http: "http://{{ outputs.vm.ip }}/health"}
  - name: cutover
    approve: {message: go?}
  - name: fence
    fence: {instance: "{{ vars.primary }}", region: eu-west-1}
  - name: dns
    dns: {provider: rfc2136, server: "SERVER", zone: example.test., record: www,
          value: "{{ outputs.vm.ip }}", tsig: "TSIG"}
  - name: page
    script: [echo, done]
"""


@pytest.fixture
def site(tmp_path: Path, moto: str, bind9: Any, monkeypatch: pytest.MonkeyPatch,
         write_policy: Callable[..., Path], apply_policy: Callable[[Path], None]
         ) -> Iterator[Callable[..., Any]]:
    """The runbook tests' policy and this runbook, scaffolding in the moto server; AWS calls go there."""
    from drorch.policy import load_policy
    from drorch.runbook.model import load_runbook
    from drorch.testing.aws import fake_aws_environment, seed_account

    monkeypatch.setenv("DRORCH_KEY", "preflight-test-key-0123")
    policy = write_policy()
    (tmp_path / "data" / "index.html").write_text("hello\n")
    runbook = tmp_path / "failover.yaml"
    runbook.write_text(RUNBOOK.replace("SERVER", bind9.server).replace("TSIG", f"file:{bind9.key_file}"))

    def seed(*faults: str) -> None:
        import boto3

        session = boto3.Session(region_name="eu-west-1")
        seed_account(session, load_runbook(runbook, policy=load_policy(policy)), load_policy(policy),
                     {"primary": "web-primary"}, set(faults))

    def make(apply: bool = True, faults: tuple[str, ...] = ()) -> tuple[Path, Path]:
        seed(*faults)
        if apply:
            apply_policy(policy)
        return runbook, policy

    with fake_aws_environment(moto):
        yield make


def _states(preflight: Preflight) -> dict[tuple[str, str], str]:
    return {(c.step, c.what): c.state for c in preflight.checks}


def test_every_need_is_there(site: Callable[..., Any]) -> None:
    runbook, policy = site()
    plan, preflight = preflight_runbook(runbook, policy, {})
    assert preflight.ok, [c for c in preflight.checks if c.failed]
    assert plan.runbook == "failover"
    states = _states(preflight)
    assert states[("data", "data of mirror web")] == "ok"
    assert states[("vm", "image, subnet, groups, data snapshot")] == "ok"
    assert states[("fence", "instance web-primary")] == "ok"
    assert states[("dns", "zone example.test. (rfc2136)")] == "ok"
    assert states[("page", "program")] == "ok"
    assert states[("announce", "sns arn:aws:sns:eu-west-1:123456789012:dr")] == "ok"
    assert states[("healthy", "-")] == states[("cutover", "-")] == "nothing to check"
    details = {c.step: c.detail for c in preflight.checks}
    assert details["dns"] == "SOA serial 1"  # a real answer from BIND
    assert details["data"].startswith("newest snapshot ") and "(RPO 15m)" in details["data"]
    assert "image web-base is ami-" in details["vm"] and "subnet dr-a is subnet-" in details["vm"]
    assert "(running)" in details["fence"]


def test_no_data_names_the_restore_step(site: Callable[..., Any]) -> None:
    runbook, policy = site(apply=False)
    _, preflight = preflight_runbook(runbook, policy, {})
    failed = preflight.first_failure
    assert failed is not None and (failed.step, failed.action) == ("data", "restore")
    assert failed.detail.startswith("cannot read mirror web at target local")


def test_a_missing_image_names_the_launch_step(site: Callable[..., Any]) -> None:
    runbook, policy = site(faults=("ami-missing",))
    _, preflight = preflight_runbook(runbook, policy, {})
    failed = preflight.first_failure
    assert failed is not None and failed.step == "vm"
    assert failed.detail.startswith("image (AMI) 'web-base' not found in eu-west-1")


def test_a_dns_server_that_does_not_answer_names_the_dns_step(site: Callable[..., Any], bind9: Any) -> None:
    runbook, policy = site()
    bind9.stop()
    _, preflight = preflight_runbook(runbook, policy, {})
    [failed] = [c for c in preflight.checks if c.failed]
    assert failed.step == "dns" and f"DNS server {bind9.server}" in failed.detail


def test_a_primary_that_does_not_exist_names_the_fence_step(site: Callable[..., Any]) -> None:
    runbook, policy = site()
    _, preflight = preflight_runbook(runbook, policy, {"primary": "no-such-primary"})
    [failed] = [c for c in preflight.checks if c.failed]
    assert failed.step == "fence"
    assert failed.detail == "instance no-such-primary not found, so it cannot be fenced"


def test_cli_dry_run_exits_1_naming_the_step_and_changes_nothing(
        site: Callable[..., Any], bind9: Any, tmp_path: Path, moto: str, drorch_env: dict[str, str],
        run_drorch: Callable[..., Any], assert_one_error: Callable[..., str]) -> None:
    runbook, policy = site()
    env = drorch_env | {"AWS_ENDPOINT_URL": moto, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1",
                        "DRORCH_KEY": "preflight-test-key-0123"}
    proc = run_drorch("runbook", "run", runbook, "--policy", policy, "--dry-run", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["runbook"] == "failover" and doc["preflight"]["ok"] is True
    bind9.stop()
    proc = run_drorch("runbook", "run", runbook, "--policy", policy, "--dry-run", env=env)
    assert_one_error(proc, 1, "preflight: step 'dns' (dns) would fail", f"DNS server {bind9.server}")
    assert "FAILED            dns (dns) zone example.test. (rfc2136)" in proc.stdout
    assert not (Path(env["DRORCH_HOME"]) / "state.db").exists()  # nothing journalled


def test_a_missing_topic_names_the_notify_step(site: Callable[..., Any]) -> None:
    import boto3

    runbook, policy = site()
    topic = "arn:aws:sns:eu-west-1:123456789012:dr"
    boto3.client("sns", region_name="eu-west-1").delete_topic(TopicArn=topic)
    _, preflight = preflight_runbook(runbook, policy, {})
    [failed] = [c for c in preflight.checks if c.failed]
    assert failed.step == "announce" and failed.detail.startswith(f"SNS topic {topic} does not exist")
