"""Bringing service back and rehearsing it: ``Recovery`` and ``Drill``.

A recovery says which mirror's latest snapshot becomes which VM, within
``rto``; a drill runs a runbook on a schedule, in a sandbox unless told
otherwise, and passes only when its ``verify`` checks pass.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from drorch.policy.bootrestore import BootRestore
from drorch.policy.fields import Argv, Cron, Duration, Name, NonEmpty, StrictModel
from drorch.policy.validation import reject

__all__ = ["Check", "Drill", "Instance", "Recovery"]


class Instance(StrictModel):
    """The VM that recovery launches; fields are passed to the provider as given."""

    type: str
    image: str
    subnet: str | None = None
    # None listed: the provider's default group applies, restrict it by listing groups.
    security_groups: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    region: str | None = None
    key_name: str | None = None
    # The instance profile (name or ARN) the VM runs as. A VM that restores a directory
    # mirror at boot needs one that may read its key and the bucket (terraform/aws output
    # recovery_vm_profile); None: the VM gets no AWS identity.
    profile: str | None = None


class Recovery(StrictModel):
    """How to bring a mirror's latest snapshot back up as a VM, within ``rto``."""

    name: Name
    provider: str
    from_: Name = Field(alias="from")
    instance: Instance
    rto: Duration
    # None: the data comes with the VM as a provider disk snapshot of the mirror (image and
    # volume mirrors exported with `drorch export ebs`); set it for a directory mirror.
    restore: BootRestore | None = None

    @field_validator("provider")
    @classmethod
    def _check_provider(cls, provider: str) -> str:
        if provider in ("aws", "gcp", "azure"):
            return provider
        driver = provider.removeprefix("libcloud:")
        if provider.startswith("libcloud:") and re.fullmatch(r"[a-z0-9_]+", driver):
            return provider
        reject(
            f"unknown provider '{provider}'; use aws, gcp, azure or libcloud:DRIVER "
            "(e.g. libcloud:openstack)"
        )


class Check(StrictModel):
    """One drill verification: exactly one of ``http``, ``tcp`` or ``command``.

    Values may hold ``{{ outputs.STEP.KEY }}`` templates, resolved when the drill runs.
    """

    http: str | None = None
    # 200 unless told otherwise: anything else (a redirect to a login page, an error
    # page) must be asked for explicitly rather than counted as healthy.
    expect: int = Field(default=200, ge=100, le=599)
    tcp: str | None = None
    command: Argv | None = None

    @property
    def kind(self) -> Literal["http", "tcp", "command"]:
        """Which of the three checks this is."""
        return "http" if self.http is not None else "tcp" if self.tcp is not None else "command"

    @field_validator("http")
    @classmethod
    def _check_http(cls, url: str | None) -> str | None:
        if url is not None and not is_template(url) and not url.startswith(("http://", "https://")):
            reject('http must be a URL starting with http:// or https://, e.g. "http://web/health"')
        return url

    @field_validator("tcp")
    @classmethod
    def _check_tcp(cls, address: str | None) -> str | None:
        if address is None or is_template(address):
            return address  # checked once the drill's runbook outputs are known
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            reject(f"invalid tcp check '{address}'; use host:port, e.g. db.internal:5432")
        return address

    @model_validator(mode="after")
    def _exactly_one(self) -> Check:
        given = [k for k in ("http", "tcp", "command") if getattr(self, k) is not None]
        if len(given) != 1:
            found = f"found {' and '.join(given)}" if given else "found none"
            reject(
                f"a check needs exactly one of http, tcp or command ({found}); "
                'e.g. {http: "http://web/health"}'
            )
        if "expect" in self.model_fields_set and self.http is None:
            reject("expect applies only to http checks; remove it")
        return self


class Drill(StrictModel):
    """A scheduled rehearsal: run a runbook, then prove service with ``verify``."""

    name: Name
    # None: runs only when asked (`drorch drill --name`); nothing starts unexpectedly.
    schedule: Cron | None = None
    runbook: Name
    # Sandbox by default: a rehearsal must never touch production unless told to.
    sandbox: bool = True
    # At least one check: a drill that verifies nothing cannot fail, so proves nothing.
    verify: Annotated[tuple[Check, ...], NonEmpty]


def is_template(value: Any) -> bool:
    """True for a string that still holds ``{{ ... }}``: checked again once rendered
    (by the runbook engine, or drorch.drill.templates for drill checks)."""
    return isinstance(value, str) and "{{" in value
