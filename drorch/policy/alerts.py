"""``alerts:``: where drorch tells people about an abnormal snapshot (SNS topic, webhook).

    alerts: {sns: "arn:aws:sns:eu-west-1:123456789012:dr", webhook: env:DR_WEBHOOK}

A webhook URL often is a secret (Slack's carry a token in the path), so it may
be given as ``env:NAME`` and is then read from the environment when sent.
"""

from __future__ import annotations

import os

from pydantic import model_validator

from drorch.policy.fields import StrictModel
from drorch.policy.validation import reject
from drorch.ports.errors import UsageError

__all__ = ["Alerts", "sns_problem", "webhook_problem"]


def sns_problem(value: str) -> str | None:
    """Why ``value`` is not an SNS topic ARN (None when it is)."""
    if value.startswith("arn:"):
        return None
    return f"sns must be a topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME), got '{value}'"


def webhook_problem(value: str) -> str | None:
    if value.startswith(("http://", "https://")):
        return None
    return "webhook must be a URL starting with http:// or https://"


class Alerts(StrictModel):
    sns: str | None = None
    webhook: str | None = None

    @model_validator(mode="after")
    def _channels(self) -> Alerts:
        if self.sns is None and self.webhook is None:
            reject('alerts needs sns, webhook or both, e.g. {webhook: "https://hooks.example.com/dr"}')
        problem = self.sns and sns_problem(self.sns)
        if self.webhook and not self.webhook.startswith("env:"):
            problem = problem or webhook_problem(self.webhook)
        if problem:
            reject(problem)
        return self

    def channels(self) -> list[tuple[str, str]]:
        """(channel, address) pairs to deliver to, ``env:`` references resolved now."""
        found = [("sns", self.sns)] if self.sns else []
        if self.webhook:
            found.append(("webhook", _resolve(self.webhook)))
        return found


def _resolve(value: str) -> str:
    if not value.startswith("env:"):
        return value
    resolved = os.environ.get(value[4:])
    if not resolved:
        raise UsageError(f"alerts.webhook names environment variable {value[4:]} but it is not set",
                         hint=f"export {value[4:]}=https://...")
    return resolved
