"""The rules of an http/tcp/command probe, shared by drill checks and the runbook ``wait`` step.

Both say "is the service up?" the same way, so they validate the same way;
only the words of their messages differ (``subject``: "a check" / "wait").
Templated values (``{{ outputs.vm.ip }}``) are checked once rendered.
"""

from __future__ import annotations

from typing import Any

from drorch.policy.validation import reject

PROBE_KINDS = ("http", "tcp", "command")


def is_template(value: Any) -> bool:
    """True for a string that still holds ``{{ ... }}``: checked again once rendered
    (by the runbook engine, or drorch.drill.templates for drill checks)."""
    return isinstance(value, str) and "{{" in value


def check_http(url: str | None) -> str | None:
    if url is not None and not is_template(url) and not url.startswith(("http://", "https://")):
        reject('http must be a URL starting with http:// or https://, e.g. "http://web/health"')
    return url


def check_tcp(address: str | None, noun: str) -> str | None:
    """``host:port`` with a port in 1..65535; ``noun`` names it in the message ("check", "address")."""
    if address is None or is_template(address):
        return address
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        reject(f"invalid tcp {noun} '{address}'; use host:port, e.g. db.internal:5432")
    return address


def check_one_probe(probe: Any, *, subject: str, plural: str, example: str) -> None:
    """Exactly one of http/tcp/command is given, and ``expect`` only with http."""
    given = [k for k in PROBE_KINDS if getattr(probe, k) is not None]
    if len(given) != 1:
        found = " and ".join(given) or "none"
        reject(f"{subject} needs exactly one of http, tcp or command (found {found}); e.g. {example}")
    if "expect" in probe.model_fields_set and probe.http is None:
        reject(f"expect applies only to http {plural}; remove it")
