"""Fixtures for runbook tests: a private DRORCH_HOME, runbook files, fakes, a policy."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drorch.runbook import Journal, RunOptions, RunResult, run_runbook
from drorch.runbook import attempts as attempts_module

from .fakes import FakeBackends

HEAD = "apiVersion: drorch/v1\nkind: Runbook\nmetadata: {name: rb}\n"

POLICY = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: shop}
encryption: {key: env:DRORCH_KEY}
sources:
  - {name: data, type: directory, path: data}
targets:
  - {name: local, url: file://repo}
mirrors:
  - {name: web, source: data, targets: [local], rpo: 15m}
recovery:
  - name: web-vm
    provider: aws
    from: web
    instance: {type: t3.small, image: web-base, subnet: dr-a, region: eu-west-1}
    rto: RTO
"""


@pytest.fixture(autouse=True)
def drorch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("DRORCH_HOME", str(home))
    monkeypatch.setattr(attempts_module, "_CLEANUP_GRACE_S", 2.0)
    return home


@pytest.fixture
def journal(drorch_home: Path) -> Journal:
    return Journal()


@pytest.fixture
def backends() -> FakeBackends:
    return FakeBackends()


@pytest.fixture
def write_runbook(tmp_path: Path) -> Callable[..., Path]:
    def write(steps: str, *, head: str = HEAD, name: str = "rb.yaml", vars: str = "") -> Path:
        path = tmp_path / name
        path.write_text(head + (f"vars: {vars}\n" if vars else "") + "steps:\n"
                        + textwrap.indent(textwrap.dedent(steps), "  "))
        return path

    return write


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[..., Path]:
    def write(rto: str = "30m") -> Path:
        (tmp_path / "data").mkdir(exist_ok=True)
        path = tmp_path / "policy.yaml"
        path.write_text(POLICY.replace("RTO", rto))
        return path

    return write


@pytest.fixture
def run(journal: Journal, backends: FakeBackends) -> Callable[..., RunResult]:
    """Run a runbook in-process against the fakes, with fast retries."""

    def go(path: Path, **kwargs: Any) -> RunResult:
        options = kwargs.pop("options", None) or RunOptions(backoff_base=0.01, approval_poll_s=0.05,
                                                            **kwargs.pop("opts", {}))
        return run_runbook(path, journal=journal, backends=backends, options=options, **kwargs)

    return go
