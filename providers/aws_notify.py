"""SNS for runbooks: publish a message to a topic (the region comes from the topic ARN)."""

from __future__ import annotations

from typing import Any

import boto3

from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed
from drorch.providers.aws_common import client, make_session, translate

__all__ = ["SnsNotifier", "open_notifier"]


def open_notifier(*, session: boto3.Session | None = None, **_: Any) -> SnsNotifier:
    return SnsNotifier(make_session(session))


class SnsNotifier:
    def __init__(self, session: boto3.Session) -> None:
        self.session = session

    def publish(self, to: str, message: str, subject: str | None, deadline: Deadline) -> str:
        parts = to.split(":")
        if len(parts) != 6 or parts[2] != "sns":
            raise StepFailed(f"'{to}' is not an SNS topic ARN", permanent=True,
                             hint="use arn:aws:sns:REGION:ACCOUNT:TOPIC")
        sns = client(self.session, "sns", parts[3])
        request: dict[str, Any] = {"TopicArn": to, "Message": message}
        if subject:
            request["Subject"] = subject[:100]
        try:
            return str(sns.publish(**request)["MessageId"])
        except Exception as err:  # noqa: BLE001 - translate() re-raises what it does not know
            if "NotFound" in str(err):
                raise StepFailed(f"SNS topic {to} does not exist", permanent=True,
                                 hint="create it (terraform/aws) or fix the notify step's sns ARN") from None
            raise translate(err, f"publish to {to}", service="sns") from None
