"""``notify``: tell people (an SNS topic or a webhook).

    notify: {sns: "arn:aws:sns:eu-west-1:123456789012:dr", message: "failover done"}
    notify: {webhook: "https://hooks.example.com/dr", message: "run {{ run.id }} started"}

Delivery is at least once: after a crash mid-step, ``runbook resume`` sends
the message again rather than risk sending it never.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from pydantic import model_validator

from drorch.policy.alerts import sns_problem, webhook_problem
from drorch.policy.validation import reject
from drorch.runbook.steps.base import Action, StepContext


class Notify(Action):
    KEY: ClassVar[str] = "notify"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("message_id", "channel")
    DEFAULT_TIMEOUT: ClassVar[timedelta] = timedelta(minutes=1)

    sns: str | None = None
    webhook: str | None = None
    message: str
    subject: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Notify:
        if (self.sns is None) == (self.webhook is None):
            reject('notify needs exactly one of sns or webhook, e.g. {sns: "arn:aws:sns:...", '
                   'message: "failover done"}')
        problem = None
        if self.sns is not None and not self.sns.startswith("{{"):
            problem = sns_problem(self.sns)
        if self.webhook is not None and not self.webhook.startswith("{{"):
            problem = webhook_problem(self.webhook)
        if problem:
            reject(problem)
        return self

    def summary(self) -> str:
        return f"{self.channel} {self.sns or self.webhook}: {self.message!r}"

    @property
    def channel(self) -> str:
        return "sns" if self.sns is not None else "webhook"

    def run(self, ctx: StepContext) -> dict[str, Any]:
        to = self.sns or self.webhook or ""
        notifier = ctx.backends.notifier(self.channel)
        message_id = notifier.publish(to, self.message, self.subject, ctx.deadline)
        ctx.log(f"{self.channel} {to}: delivered ({message_id})")
        return {"message_id": message_id, "channel": self.channel}
