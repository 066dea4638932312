"""Webhooks for ``notify``: POST a small JSON document to an HTTP(S) URL.

The body is ``{"text": MESSAGE, "subject": SUBJECT, "source": "drorch"}``;
``text`` is what Slack and Mattermost incoming webhooks read. A 2xx answer
is delivery; 5xx and network errors are retried by the engine, 4xx are not.
Uses only the standard library.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed

__all__ = ["WebhookNotifier", "open_notifier"]


def open_notifier(**_: Any) -> WebhookNotifier:
    return WebhookNotifier()


class WebhookNotifier:
    def publish(self, to: str, message: str, subject: str | None, deadline: Deadline) -> str:
        body = json.dumps({"text": message, "subject": subject, "source": "drorch"}).encode()
        request = urllib.request.Request(to, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "drorch-notify"})
        try:
            with urllib.request.urlopen(request, timeout=deadline.bounded(15)) as response:
                return f"HTTP {response.status}"
        except urllib.error.HTTPError as err:
            raise StepFailed(f"webhook {to} answered HTTP {err.code}",
                             permanent=400 <= err.code < 500 and err.code not in (408, 429)) from None
        except (urllib.error.URLError, OSError) as err:
            raise StepFailed(f"webhook {to} unreachable: {getattr(err, 'reason', err)}") from None
