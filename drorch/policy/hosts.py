"""The machines a policy spans (SPEC §7, ``hosts:``).

A policy without ``hosts:`` runs everything on the machine that runs drorch,
with no engine. With hosts, each source names the host that holds its data
(``host: web1``); a source that names none belongs to the ``local`` host, the
agent started with ``drorch agent --host local``. Names are checked where they
are used (``sources[i].host``, a runbook step's ``on:``) like every other
reference, with ``file:line`` and the known names.
"""

from __future__ import annotations

from pydantic import Field

from drorch.policy.fields import Name, StrictModel

__all__ = ["LOCAL_HOST", "Host"]

LOCAL_HOST = "local"
"""The host of a source that names none: where drorch itself runs."""


class Host(StrictModel):
    """One machine of the estate; ``site`` and ``labels`` are for the operator and status."""

    name: Name
    site: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
