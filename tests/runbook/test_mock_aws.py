"""``drorch test --mock aws``: the shipped runbooks pass under moto, and each fault fails clearly.

Fault cases run the shipped failover runbook (with shorter timeouts, so the
timeout path takes seconds) and check the one sentence the operator reads,
that undo ran for what had been done, and the JUnit report.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drorch.ports.errors import UsageError
from drorch.testing.runbooks import TestReport, run_test

from support.policies import aws_dr_with_ebs_launch

ROOT = Path(__file__).resolve().parents[2]
FAILOVER = ROOT / "policies" / "runbooks" / "failover.yaml"
FAILBACK = ROOT / "policies" / "runbooks" / "failback.yaml"
POLICY = ROOT / "policies" / "aws-dr.yaml"


def verdicts(report: TestReport) -> list[tuple[str, str]]:
    return [(name, step.state) for name, step in report.cases()]


def test_ebs_launch_fails_honestly_without_a_data_snapshot(tmp_path: Path):
    """The mock seeds scaffolding, never data: no `drorch export ebs` ran, so there is no snapshot
    for a recovery launched from one (the shipped aws-dr restores its directory mirror at boot)."""
    aws_dr_with_ebs_launch(tmp_path)
    report = run_test(tmp_path / "runbooks" / "failover.yaml")
    assert not report.passed
    assert report.result.failed_step == "vm"
    assert (report.result.error or "").startswith(
        "no completed EBS snapshot tagged drorch:mirror=web in eu-west-1; export one with "
        "`drorch export ebs POLICY --mirror web`")
    assert not any("EBS snapshot" in note for note in report.seeded)
    assert any(note.startswith("image web-base") for note in report.seeded)


def test_image_only_failover_passes_and_measures_rto(fast_failover: Path):
    report = run_test(fast_failover)
    assert report.passed, report.lines()
    assert all(state == "done" for _, state in verdicts(report))
    assert report.result.rto_s is not None and 0 < report.result.rto_s < 30
    # web is a directory mirror the VM restores at boot: the mock seeds no data for it, and since
    # moto runs no user-data the launch claims none (tests/runbook/test_boot_restore.py runs it)
    assert not any(note.startswith("EBS snapshot") for note in report.seeded)
    assert "instance profile aws-dr-drorch-recovery-vm" in report.seeded
    vm = report.result.steps[1]
    assert vm.outputs["snapshot_id"] == "" and vm.outputs["ip"].startswith("10.")
    suite = ET.fromstring(report.junit_xml()).find("testsuite")
    assert suite is not None and suite.get("tests") == "8" and suite.get("failures") == "0"
    assert suite.get("name") == "MOCK (aws) failover-web" and report.to_json()["kind"] == "MOCK"
    assert [c.get("name") for c in suite.iter("testcase")] == [
        "announce (notify)", "vm (launch)", "healthy (wait)", "cutover (approve)", "fence (fence)",
        "dns (dns)", "serving (wait)", "page (notify)"]
    assert report.lines()[-1].startswith("PASSED: 8 pass in ")


def test_shipped_failback_passes_with_its_required_var(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DRORCH_KEY", raising=False)  # the sandbox has its own scratch key
    report = run_test(FAILBACK, overrides={"dr_instance": "web-vm-dr"})
    assert report.passed, report.lines()
    reverse, restore = report.result.steps[0], report.result.steps[1]
    assert reverse.outputs["snapshot"] == restore.outputs["snapshot"]
    assert restore.outputs["files"] > 0 and "/restore/" in restore.outputs["path"]
    assert not (ROOT / ".drorch-return").exists()  # production targets untouched
    with pytest.raises(UsageError) as caught:
        run_test(FAILBACK)
    assert str(caught.value) == "runbook failback-web needs a value for dr_instance; --var dr_instance=VALUE"


IMAGE_ONLY = ("launch: {recovery: web-vm}", "launch: {recovery: web-vm, snapshot: none}")


def _beside_policy(tmp_path: Path, text: str) -> Path:
    """``text`` as runbooks/failover.yaml next to a copy of the shipped policy."""
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "failover.yaml").write_text(text)
    (runbooks / "failback.yaml").write_text(FAILBACK.read_text())
    (tmp_path / "example-data").mkdir()
    (tmp_path / "aws-dr.yaml").write_text(POLICY.read_text())
    return runbooks / "failover.yaml"


@pytest.fixture
def fast_failover(tmp_path: Path) -> Path:
    """The shipped failover runbook, image-only, with second-scale timeouts, next to its policy."""
    text = FAILOVER.read_text().replace("timeout: 10m", "timeout: 2s").replace("interval: 5s",
                                                                               "interval: 1s")
    # a stateless launch: the mock holds no data snapshot (that takes a real `drorch export ebs`)
    return _beside_policy(tmp_path, text.replace(*IMAGE_ONLY))


IP = r"10\.\d+\.\d+\.\d+"

FAULTS = [
    ("deny:ec2:RunInstances", "vm",
     "AWS denied permission to launch a t3.small instance from web-base in eu-west-1: the credentials in "
     "use may not call ec2:RunInstances; grant ec2:RunInstances to the DR role (terraform/aws has the "
     "least-privilege policy)", []),
    ("instance-limit", "vm",
     "AWS quota reached while trying to launch a t3.small instance from web-base in eu-west-1 "
     "(InstanceLimitExceeded: You have requested more instances than your current instance limit allows "
     "(simulated)); request a higher quota in Service Quotas, or stop unused instances", []),
    ("ami-missing", "vm",
     "image (AMI) 'web-base' not found in eu-west-1; check recovery.instance.image: an AMI ID or the name "
     "of an AMI in this region (copy it to the DR region first)", []),
    ("zone-missing", "dns",
     "no Route53 hosted zone named example.com. in this account; create it (terraform/aws) or fix the dns "
     "step's zone", ["fence", "vm"]),
    ("unhealthy", "healthy",  # fails on the first probe: a simulated refusal never turns healthy
     rf"http://{IP}/health: connection refused \(simulated: --fault unhealthy\)", ["vm"]),
]


@pytest.mark.parametrize(("fault", "step", "sentence", "undone"), FAULTS,
                         ids=[f[0].split(":")[0] for f in FAULTS])
def test_faults_fail_the_step_with_one_clear_sentence(fast_failover: Path, fault: str, step: str,
                                                      sentence: str, undone: list[str]):
    report = run_test(fast_failover, faults=[fault], backoff_base=0.05)
    assert not report.passed
    result = report.result
    assert result.failed_step == step
    if fault == "unhealthy":
        assert re.fullmatch(sentence, result.error or ""), result.error
    else:
        assert result.error == sentence
    assert [(u.name, u.state) for u in result.undo] == [(name, "done") for name in undone]
    if undone:  # the launched VM was terminated by the undo
        assert next(u for u in result.undo if u.name == "vm").outputs["state"] == "terminated"
    failed_case = next(c for c in ET.fromstring(report.junit_xml()).iter("testcase")
                       if c.find("failure") is not None)
    assert failed_case.get("name", "").startswith(f"{step} (")
    failure = failed_case.find("failure")
    assert failure is not None and failure.get("message") == result.error
    assert any(line.startswith(f"FAIL    {step} (") for line in report.lines())


def test_unknown_fault_is_a_usage_error(fast_failover: Path):
    with pytest.raises(UsageError) as caught:
        run_test(fast_failover, faults=["gremlins"])
    assert str(caught.value) == ("unknown --fault 'gremlins'; use one of: unhealthy, instance-limit, "
                                 "ami-missing, zone-missing, deny:SERVICE:ACTION")


def test_cli_writes_junit_and_exits_by_outcome(fast_failover: Path, tmp_path: Path,
                                               drorch_env: dict[str, str], run_drorch: Callable[..., Any],
                                               assert_one_error: Callable[..., str]):
    junit = tmp_path / "out.xml"
    proc = run_drorch("test", fast_failover, "--mock", "aws", "--junit", junit, env=drorch_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED: 8 pass in " in proc.stdout and "measured RTO" in proc.stdout
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "0"  # type: ignore[union-attr]
    proc = run_drorch("test", fast_failover, "--mock", "aws", "--fault", "ami-missing", env=drorch_env)
    assert proc.returncode == 1
    assert "FAIL    vm (launch)" in proc.stdout and "NOT RUN healthy (not run)" in proc.stdout


def _primary(ec2: Any) -> dict[str, Any]:
    reply = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["web-primary"]}])
    [instance] = [i for r in reply["Reservations"] for i in r["Instances"]]
    return instance


@pytest.mark.parametrize("primary_was", ["running", "stopped"])
def test_failed_failover_leaves_the_primary_as_it_found_it(fast_failover: Path, tmp_path: Path,
                                                           primary_was: str):
    """dns fails after the fence: the built-in undo starts the primary again (only if it ran)."""
    from drorch.runbook.engine import Engine, RunOptions
    from drorch.runbook.journal import Journal
    from drorch.runbook.runner import load_for_run
    from drorch.testing.aws import mock_aws_for

    runbook, policy, policy_path = load_for_run(fast_failover, None, discover=True)
    variables = runbook.resolve_vars({})
    with mock_aws_for(runbook, policy, variables, ["zone-missing"]) as mock:
        ec2 = mock.session.client("ec2", region_name="eu-central-1")
        if primary_was == "stopped":
            ec2.stop_instances(InstanceIds=[_primary(ec2)["InstanceId"]])
        engine = Engine(runbook, file=fast_failover, journal=Journal(tmp_path / "state.db"),
                        backends=mock.backends, policy=policy, policy_path=policy_path,
                        options=RunOptions(yes=True, sandbox=tmp_path, backoff_base=0.05))
        result = engine.start(variables)
        after = _primary(ec2)["State"]["Name"]  # read back from moto, not from drorch's outputs
    assert result.status == "failed" and result.failed_step == "dns"
    fence = next(s for s in result.steps if s.name == "fence")
    assert fence.outputs["previous_state"] == primary_was and fence.outputs["state"] == "stopped"
    assert after == primary_was
    undone = {u.name: u for u in result.undo}
    if primary_was == "running":
        assert undone["fence"].state == "done" and undone["fence"].outputs["state"] == "running"
    else:
        assert "fence" not in undone  # it was stopped before: nothing to start
    assert undone["vm"].outputs["state"] == "terminated"


def test_unhealthy_fault_fails_on_the_first_probe_not_at_the_timeout(tmp_path: Path):
    """The shipped 10m health wait: a simulated refusal never turns healthy, so it fails at once."""
    text = FAILOVER.read_text().replace(*IMAGE_ONLY)
    assert "timeout: 10m" in text
    failover = _beside_policy(tmp_path, text)
    report = run_test(failover, faults=["unhealthy"])
    healthy = next(s for s in report.result.steps if s.name == "healthy")
    assert report.result.failed_step == "healthy" and healthy.attempts == 1
    assert "connection refused (simulated: --fault unhealthy)" in (healthy.error or "")
