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

ROOT = Path(__file__).resolve().parents[2]
FAILOVER = ROOT / "policies" / "runbooks" / "failover.yaml"
FAILBACK = ROOT / "policies" / "runbooks" / "failback.yaml"
POLICY = ROOT / "policies" / "aws-dr.yaml"


def verdicts(report: TestReport) -> list[tuple[str, str]]:
    return [(name, step.state) for name, step in report.cases()]


def test_shipped_failover_passes_and_measures_rto(tmp_path: Path):
    report = run_test(FAILOVER)
    assert report.passed, report.lines()
    assert all(state == "done" for _, state in verdicts(report))
    assert report.result.rto_s is not None and 0 < report.result.rto_s < 30
    assert any(note.startswith("EBS snapshot snap-") and "of mirror web in eu-west-1" in note
               for note in report.seeded)
    vm = report.result.steps[2]
    assert vm.outputs["snapshot_id"].startswith("snap-") and vm.outputs["ip"].startswith("10.")
    suite = ET.fromstring(report.junit_xml()).find("testsuite")
    assert suite is not None and suite.get("tests") == "8" and suite.get("failures") == "0"
    assert [c.get("name") for c in suite.iter("testcase")][:3] == [
        "announce (notify)", "fence (fence)", "vm (launch)"]
    assert report.lines()[-1].startswith("PASSED: 8 pass in ")


def test_shipped_failback_passes_with_its_required_var(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DRORCH_KEY", raising=False)  # the sandbox has its own scratch key
    report = run_test(FAILBACK, overrides={"dr_instance": "web-vm-dr"})
    assert report.passed, report.lines()
    reverse, restore = report.result.steps[1], report.result.steps[2]
    assert reverse.outputs["snapshot"] == restore.outputs["snapshot"]
    assert restore.outputs["files"] > 0 and "/restore/" in restore.outputs["path"]
    assert not (ROOT / ".drorch-return").exists()  # production targets untouched
    with pytest.raises(UsageError) as caught:
        run_test(FAILBACK)
    assert str(caught.value) == "runbook failback-web needs a value for dr_instance; --var dr_instance=VALUE"


@pytest.fixture
def fast_failover(tmp_path: Path) -> Path:
    """The shipped failover runbook with second-scale timeouts, next to a copy of its policy."""
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    text = FAILOVER.read_text().replace("timeout: 10m", "timeout: 2s").replace("interval: 5s",
                                                                               "interval: 1s")
    (runbooks / "failover.yaml").write_text(text)
    (runbooks / "failback.yaml").write_text(FAILBACK.read_text())
    (tmp_path / "example-data").mkdir()
    (tmp_path / "aws-dr.yaml").write_text(POLICY.read_text())
    return runbooks / "failover.yaml"


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
     "step's zone", ["vm"]),
    ("unhealthy", "healthy",
     rf"timed out after 2s \(\d attempts\); last error: http://{IP}/health: connection refused "
     r"\(simulated: --fault unhealthy\)", ["vm"]),
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
