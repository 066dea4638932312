"""Bringing service back and rehearsing it: ``Recovery`` and ``Drill``.

A recovery says which mirror's latest snapshot becomes which VM, within
``rto``; a drill runs a runbook on a schedule, in a sandbox unless told
otherwise, and passes only when its ``verify`` checks pass.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from drorch.policy.fields import Argv, Cron, Duration, Name, NonEmpty, StrictModel
from drorch.policy.probes import check_http, check_one_probe, check_tcp
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


class Recovery(StrictModel):
    """How to bring a mirror's latest snapshot back up as a VM, within ``rto``."""

    name: Name
    provider: str
    from_: Name = Field(alias="from")
    instance: Instance
    rto: Duration

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
        return check_http(url)

    @field_validator("tcp")
    @classmethod
    def _check_tcp(cls, address: str | None) -> str | None:
        return check_tcp(address, "check")  # a template is checked once the runbook outputs are known

    @model_validator(mode="after")
    def _exactly_one(self) -> Check:
        check_one_probe(self, subject="a check", plural="checks", example='{http: "http://web/health"}')
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
