"""The shipped Grafana dashboard and Prometheus rules fit what drorch really exposes.

The exposition comes from a real policy: a mirror with a primary and a
secondary target, applied once, and a drill; `drorch status --format
prometheus` renders it. Every ``drorch_*`` metric that a panel or a rule
queries must be a sample in it; ``up`` is the only other name allowed (the
scrape health Prometheus records itself, used for agents and the scheduler).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
RULES = MONITORING / "prometheus-rules.yaml"
RULE_TESTS = MONITORING / "prometheus-rules.test.yaml"
METRIC = re.compile(r"\b(drorch_[a-z0-9_]+|up)\b(?!\s*\()")

RUNBOOK = "apiVersion: drorch/v1\nkind: Runbook\nmetadata: {name: f}\nsteps: [{name: s, script: ['true']}]\n"


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def rule_exprs() -> list[str]:
    doc = YAML(typ="safe", pure=True).load(RULES.read_text())
    return [str(r["expr"]) for g in doc["groups"] for r in g["rules"]]


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.conftest import build_dataset, drorch_environment, run_drorch

    root = tmp_path_factory.mktemp("monitoring")
    build_dataset(root / "data", big_size=100_000)
    (root / "rb.yaml").write_text(RUNBOOK)
    policy = root / "policy.yaml"
    policy.write_text(
        "apiVersion: drorch/v1\nkind: MirrorPolicy\nmetadata: {name: shop}\n"
        "encryption: {key: env:DRORCH_KEY}\nsources: [{name: d, type: directory, path: data}]\n"
        "targets: [{name: a, url: file://repo-a}, {name: b, url: file://repo-b}]\n"
        "mirrors: [{name: web, source: d, targets: [a, b], mode: async, rpo: 1h}]\n"
        "runbooks: {failover: rb.yaml}\n"
        "drills: [{name: weekly, runbook: failover, verify: [{command: ['true']}]}]\n")
    env = drorch_environment(root / "home", "monitoring-key")
    applied = run_drorch("apply", policy, "--yes", "-q", env=env)
    assert applied.returncode == 0, applied.stderr
    status = run_drorch("status", policy, "--format", "prometheus", env=env)
    assert status.returncode == 0, status.stderr
    return str(status.stdout)


def test_every_metric_queried_is_exposed(exposition: str) -> None:
    exposed = {line.split("{")[0] for line in exposition.splitlines() if line and not line.startswith("#")}
    referenced = {name for expr in dashboard_exprs() + rule_exprs() for name in METRIC.findall(expr)}
    assert "drorch_anomaly" in referenced and "drorch_rpo_breach" in referenced
    missing = referenced - exposed - {"up"}
    assert not missing, f"queried but not exposed: {sorted(missing)}"
    assert 'drorch_replication_lag_seconds{policy="shop",mirror="web",target="b"} 0.000' in exposition


def _promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (Debian/Ubuntu: apt-get install prometheus)")
    return binary


def _run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=MONITORING, input=stdin, capture_output=True, text=True, timeout=120)


def test_promtool_checks_the_rules() -> None:
    proc = _run(_promtool(), "check", "rules", RULES.name)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    proc = _run(_promtool(), "test", "rules", RULE_TESTS.name)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_accepts_the_exposition(exposition: str) -> None:
    """Each metric family is one group with HELP and TYPE, as the text format requires."""
    proc = _run(_promtool(), "check", "metrics", stdin=exposition)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    families = [line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE")]
    assert len(families) == len(set(families))


def test_the_dashboard_is_importable() -> None:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    assert doc["uid"] and doc["schemaVersion"] >= 36
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in doc["templating"]["list"]}
    assert {"datasource", "policy"} <= variables
    for expr in dashboard_exprs():
        assert "$policy" in expr or 'job="drorch-agent"' in expr, expr


