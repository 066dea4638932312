"""Telling people about an abnormal snapshot through the notify backends runbooks use.

Delivery is best effort and never fails the apply that found the anomaly: the
snapshot is committed, `status` exits 3 and the metric is set whether or not
the message got through; a failed delivery is reported to the operator.
"""

from __future__ import annotations

from drorch import registry
from drorch.anomaly.store import Flag
from drorch.policy.alerts import Alerts
from drorch.ports.deadline import Deadline
from drorch.ports.errors import DrorchError

SEND_TIMEOUT_S = 30.0


def alert_message(policy: str, flag: Flag) -> tuple[str, str]:
    """(subject, message) for one flagged snapshot."""
    subject = f"drorch: abnormal snapshot of {flag.mirror} ({policy})"
    message = (f"drorch flagged snapshot {flag.snapshot[:8]} of mirror {flag.mirror!r} in policy "
               f"{policy!r}: {'; '.join(flag.reasons)}. This is what ransomware encrypting a share "
               "or a mass deletion looks like. Retention keeps every older snapshot until someone "
               f"checks and runs `drorch ack POLICY {flag.snapshot[:8]}`.")
    return subject, message


def send_alerts(policy: str, alerts: Alerts | None, flag: Flag) -> list[str]:
    """Deliver to every channel of the policy's ``alerts``; returns one sentence per failed delivery."""
    if alerts is None:
        return []
    subject, message = alert_message(policy, flag)
    try:
        channels = alerts.channels()
    except DrorchError as err:
        return [f"alert not sent: {err}"]
    failures = []
    for channel, to in channels:
        try:
            registry.load("notify", channel)().publish(to, message, subject, Deadline(SEND_TIMEOUT_S))
        except DrorchError as err:  # never echo a resolved env: webhook, it may carry a token
            shown = str(err).replace(to, getattr(alerts, channel) or channel)
            failures.append(f"alert by {channel} not delivered: {shown}")
    return failures
