"""``drorch drill`` as an operator runs it: exit codes, one-sentence errors, kill -9 and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import drill_resources


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRORCH_", "AWS_"))}
    env.update(DRORCH_HOME=str(tmp_path / "home"), DRORCH_KEY="drill-test-key-0123456789", NO_COLOR="1",
               COLUMNS="200")
    return env


def _drorch(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["drorch", *map(str, args)], env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def _one_sentence(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_cli_drill_writes_three_reports(policy_dir: Callable[..., Path], moto: str, tmp_path: Path) -> None:
    policy = policy_dir()
    reports = [tmp_path / "out" / f"drill.{ext}" for ext in ("html", "xml", "json")]
    proc = _drorch("drill", policy, "--name", "weekly", "--mock", "aws", "--mock-endpoint", moto,
                   *[a for r in reports for a in ("--report", r)], env=_env(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "MOCK (aws) drill weekly of policy shop: PASSED" in proc.stdout and proc.stderr == ""
    doc = json.loads(reports[2].read_text())
    assert doc["passed"] and doc["rto_s"] > 0 and doc["exit_code"] == 0
    assert doc["kind"] == "MOCK" and doc["mock"] == "aws" and doc["summary"].startswith("MOCK (aws) ")
    html = reports[0].read_text()
    assert "<svg" in html and '<span class="badge mock"' in html and "<title>MOCK (aws) DR drill" in html
    junit = reports[1].read_text()
    assert 'testsuite name="MOCK (aws) drill weekly (shop)"' in junit
    assert '<property name="kind" value="MOCK" />' in junit
    # a mock drill is never the last drill status reports
    status = _drorch("status", policy, "--json", env=_env(tmp_path))
    drills = {d["drill"]: d for d in json.loads(status.stdout)["drills"]}
    assert drills["weekly"]["verdict"] == "never", drills


def test_cli_verify_never_passes_exit_3(policy_dir: Callable[..., Path], moto: str, tmp_path: Path) -> None:
    policy = policy_dir('- {tcp: "127.0.0.1:9"}\n')
    proc = _drorch("drill", policy, "-n", "weekly", "--mock", "aws", "--mock-endpoint", moto,
                   "--verify-timeout", "1s", env=_env(tmp_path))
    _one_sentence(proc, 3, "MOCK (aws) drill weekly of policy shop failed", "check tcp 127.0.0.1:9 failed",
                  "never passed in 1s")


def test_cli_policy_without_runbooks_exit_2(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: drorch/v1\nkind: MirrorPolicy\nmetadata: {name: bare}\n"
                      "encryption: {key: env:DRORCH_KEY}\nsources: [{name: d, type: directory, path: data}]\n"
                      "targets: [{name: t, url: file://repo}]\nmirrors: [{name: m, source: d, targets: [t], "
                      "rpo: 1h}]\n")
    proc = _drorch("drill", policy, env=_env(tmp_path))
    _one_sentence(proc, 2, "policy bare has no runbooks, so there is nothing to drill")


def test_cli_bad_verify_template_exit_2(policy_dir: Callable[..., Path], tmp_path: Path) -> None:
    policy = policy_dir('- {http: "http://{{ outputs.web-vm.ip }}/x"}\n', apply=False)
    proc = _drorch("drill", policy, "-n", "weekly", env=_env(tmp_path))
    _one_sentence(proc, 2, "policy.yaml:", "drills[0].verify[2].http", "'web-vm' is a recovery")


def _start_hanging_drill(policy: Path, moto: str, env: dict[str, str], ec2: Any) -> subprocess.Popen[str]:
    proc = subprocess.Popen(["drorch", "drill", str(policy), "-n", "hang", "--mock", "aws", "--mock-endpoint",
                             moto], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the VM is up in the sandbox
        if any(r.startswith("i-") for r in drill_resources(ec2)):
            time.sleep(1.0)  # now inside the wait step that never passes
            return proc
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the drill never launched its VM")


def test_killed_drill_is_swept_by_the_next_one(policy_dir: Callable[..., Path], moto: str, ec2: Any,
                                               tmp_path: Path) -> None:
    policy, env = policy_dir(), _env(tmp_path)
    proc = _start_hanging_drill(policy, moto, env, ec2)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait(10)
    left = drill_resources(ec2)
    assert any(r.startswith("i-") for r in left) and any(r.startswith("vpc-") for r in left)
    scratch = list((tmp_path / "home" / "drills").iterdir())
    assert scratch, "the killed drill's scratch directory should still be there"

    proc2 = _drorch("drill", policy, "-n", "weekly", "--mock", "aws", "--mock-endpoint", moto, "--json",
                    env=env)
    assert proc2.returncode == 0, proc2.stdout + proc2.stderr
    doc = json.loads(proc2.stdout)
    swept = " ".join(doc["swept"])
    assert all(resource in swept for resource in left), (left, swept)
    assert drill_resources(ec2) == []
    assert not any(p.exists() for p in scratch)


def test_sigterm_mid_drill_cleans_up(policy_dir: Callable[..., Path], moto: str, ec2: Any,
                                     tmp_path: Path) -> None:
    policy, env = policy_dir(), _env(tmp_path)
    proc = _start_hanging_drill(policy, moto, env, ec2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stdout + stderr
    assert "interrupted by SIGTERM during step 'never'; the sandbox was cleaned up" in stderr
    assert "cleanup-done" in stdout
    assert drill_resources(ec2) == []
    from drorch.drill.history import DrillHistory

    [recorded] = DrillHistory(Path(env["DRORCH_HOME"]) / "state.db").recent("shop", "hang")
    assert recorded.verdict == "interrupted" and recorded.mock == "aws"
    status = _drorch("status", policy, "--json", env=env)
    [drill] = [d for d in json.loads(status.stdout)["drills"] if d["drill"] == "hang"]
    assert drill["verdict"] == "never"  # a mock drill is history, never the last drill
