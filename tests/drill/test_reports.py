"""Reports: JUnit XML for CI, JSON, and HTML checked in a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from drorch.drill import CheckResult, DrillResult, Phase, SnapshotUsed, write_report
from drorch.drill.history import DrillHistory
from drorch.engine.status import policy_status
from drorch.ports.errors import UsageError

T0 = 1_790_000_000.0


def sample(passed: bool = True, drill_id: str = "d1", started: float = T0) -> DrillResult:
    steps = [("fence", "fence", 0.0, 0.2), ("data", "restore", 0.2, 1.4), ("vm", "launch", 1.4, 9.0),
             ("healthy", "wait", 9.0, 14.0), ("dns", "dns", 14.0, 14.3)]
    phases = [Phase(n, "step", "done", started + a, started + b, action) for n, action, a, b in steps]
    check_ok = CheckResult("http http://10.213.1.4/health", "http", True, "HTTP 200", 1, started + 14.3,
                           started + 15.0)
    check_bad = CheckResult("tcp 10.213.1.4:5432", "tcp", passed, "never passed in 2m; last: refused", 60,
                            started + 14.3, started + 16.0)
    result = DrillResult(drill_id, "shop", "weekly", "failover-web", started, started + 20.0,
                         run_id="abcd1234", runbook_status="succeeded", rto_s=16.0 if passed else None,
                         rto_objective_s=30.0, rpo_s=600.0, rpo_objective_s=3600.0,
                         snapshots=[SnapshotUsed("data", "web", "f00dfeed" * 8, started - 600, "repository")],
                         checks=[check_ok, check_bad], phases=phases,
                         sandbox_notes=["dns A www.example.com. -> 10.213.1.4: recorded, production DNS "
                                        "(route53) untouched"],
                         cleanup=["instance i-0abc in aws eu-west-1", "network vpc-0abc in aws eu-west-1"])
    result.phases += [Phase(c.name, "verify", "done" if c.passed else "failed", c.started, c.finished)
                      for c in result.checks]
    result.phases.append(Phase("cleanup", "cleanup", "done", started + 16.0, started + 19.0))
    return result


def test_junit_counts_failures_and_objectives(tmp_path: Path) -> None:
    path = tmp_path / "r.xml"
    write_report(sample(passed=False), path)
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1"  # the tcp check
    names = [c.get("name") for c in suite.findall("testcase")]
    assert "check tcp 10.213.1.4:5432" in names and "RTO within objective" in names
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "failed" and props["rpo_seconds"] == "600.0"


def test_json_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_report(sample(), path)
    doc = json.loads(path.read_text())
    assert doc["passed"] and doc["rto_met"] and doc["rpo_met"]
    assert DrillResult.from_json(doc).checks[0].name == "http http://10.213.1.4/health"


def test_unknown_report_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="end the file name in .html, .xml"):
        write_report(sample(), tmp_path / "r.pdf")


def test_status_reports_last_drill_and_breach(tmp_path: Path) -> None:
    from drorch.policy import load_policy
    from drorch.secrets import StaticPassword

    history = DrillHistory(tmp_path / "state.db")
    history.record(sample(passed=True, drill_id="old", started=T0 - 100))
    policy = tmp_path / "p.yaml"
    (tmp_path / "data").mkdir()
    (tmp_path / "rb.yaml").write_text("apiVersion: drorch/v1\nkind: Runbook\nmetadata: {name: rb}\n"
                                      "steps: [{name: s, script: ['true']}]\n")
    policy.write_text("apiVersion: drorch/v1\nkind: MirrorPolicy\nmetadata: {name: shop}\n"
                      "encryption: {key: env:DRORCH_KEY}\nsources: [{name: d, type: directory, path: data}]\n"
                      "targets: [{name: t, url: file://repo}]\nmirrors: [{name: m, source: d, targets: [t], "
                      "rpo: 1h}]\nrunbooks: {failover: rb.yaml}\ndrills: [{name: weekly, runbook: failover, "
                      "verify: [{command: ['true']}]}, {name: monthly, runbook: failover, verify: "
                      "[{command: ['true']}]}]\n")
    loaded = load_policy(policy)
    report = policy_status(loaded, StaticPassword(b"x"), history=history)
    weekly, monthly = report.drills
    assert weekly.verdict == "passed" and not weekly.breach and weekly.rto_met
    assert monthly.verdict == "never" and not monthly.breach
    history.record(sample(passed=False, drill_id="new"))
    report = policy_status(loaded, StaticPassword(b"x"), history=history)
    assert report.drills[0].breach and report.breach
    assert "check tcp 10.213.1.4:5432 failed" in (report.drills[0].reason or "")
    text = report.to_prometheus()
    assert 'drorch_drill_passed{policy="shop",drill="weekly"} 0' in text
    assert 'drorch_drill_passed{policy="shop",drill="monthly"} -1' in text
    assert 'drorch_drill_rto_objective_seconds{policy="shop",drill="weekly"} 30.000' in text
    assert 'drorch_drill_breach{policy="shop",drill="weekly"} 1' in text
    assert report.to_json()["drills"][0]["breach"] is True


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); the HTML report is checked "
                    "in a real browser only where one exists")
    history = [sample(passed=False, drill_id="new")] + [sample(drill_id=f"d{i}", started=T0 - 86400 * i)
                                                        for i in range(1, 6)]
    page = tmp_path / "report.html"
    write_report(history[0], page, history)
    text = page.read_text()
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "").replace("http://10.213", "")
    shot = tmp_path / "shot.png"
    started = time.monotonic()
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
                           f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert shot.exists(), f"no screenshot after {time.monotonic() - started:.1f}s: {proc.stderr[-2000:]}"
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    assert len(set(pixels)) > 50, "the screenshot is (nearly) uniform: the page did not render"
    stride = len(pixels) // height
    rows = {pixels[i * stride:(i + 1) * stride] for i in range(0, height, 8)}
    assert len(rows) > 40, "too few distinct rows: the page is mostly empty"
    shutil.copy(shot, Path("/tmp") / "drorch-drill-report.png")  # for a human to look at
