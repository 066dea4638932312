"""`alerts:` in the policy: validated with file:line, delivered best effort, secrets never echoed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from drorch.anomaly import Flag
from drorch.anomaly.alert import send_alerts
from drorch.policy import Policy, load_policy
from drorch.ports.errors import PolicyError

HEAD = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: shop}
encryption: {key: env:K}
sources: [{name: s, type: directory, path: /srv}]
targets: [{name: t, url: file:///r}]
mirrors: [{name: m, source: s, targets: [t], rpo: 1h}]
"""
FLAG = Flag("shop", "m", "0123456789abcdef", 0, ("30% of files changed (usual 2%, limit 12%)",), None)


def _policy(tmp_path: Path, alerts: str) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(HEAD + alerts)
    return load_policy(path)


@pytest.mark.parametrize(("alerts", "words"), [
    ("alerts: {}\n", ["policy.yaml:8 alerts", "sns, webhook or both"]),
    ("alerts: {sns: my-topic}\n", ["policy.yaml:8 alerts", "topic ARN"]),
    ("alerts: {webhook: ftp://x}\n", ["policy.yaml:8 alerts", "http:// or https://"]),
    ("alerts: {email: ops@example.com}\n", ["policy.yaml:8 alerts", "unknown key 'email'"]),
])
def test_bad_alerts_are_validation_errors(tmp_path: Path, alerts: str, words: list[str]) -> None:
    with pytest.raises(PolicyError) as caught:
        _policy(tmp_path, alerts)
    for word in words:
        assert word in str(caught.value), str(caught.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_failed_delivery_is_reported_without_the_secret_url(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_url = f"http://127.0.0.1:{_closed_port()}/services/T000/B000/sekrit-token"
    monkeypatch.setenv("DR_WEBHOOK", secret_url)
    policy = _policy(tmp_path, "alerts: {webhook: env:DR_WEBHOOK}\n")
    [failure] = send_alerts(policy.metadata.name, policy.alerts, FLAG)
    assert "not delivered" in failure and "env:DR_WEBHOOK" in failure
    assert "sekrit-token" not in failure


def test_an_unset_webhook_variable_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DR_WEBHOOK", raising=False)
    policy = _policy(tmp_path, "alerts: {webhook: env:DR_WEBHOOK}\n")
    [failure] = send_alerts(policy.metadata.name, policy.alerts, FLAG)
    assert failure.startswith("alert not sent: alerts.webhook names environment variable DR_WEBHOOK")
