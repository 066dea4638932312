"""``drorch drill --mock aws``: a drill against emulated AWS, for CI.

In-process moto by default (seeded for the drill's runbook exactly like
``drorch test --mock aws``). With ``--mock-endpoint URL`` the drill talks to a
running moto server instead, whose state outlives the drill process: that is
how tests kill a drill mid-way and check that the next one sweeps what it left.
Probes of VMs are simulated (they do not boot); loopback probes are real.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drorch.ports.errors import UsageError

if TYPE_CHECKING:
    from drorch.policy import Policy
    from drorch.ports.recovery import Backends
    from drorch.runbook.model import Runbook

__all__ = ["MockCloud", "mock_cloud"]


@dataclass
class MockCloud:
    backends: Backends
    options: dict[str, Any]  # passed to the sandbox cloud (the boto3 session)
    seeded: list[str] = field(default_factory=list)


@contextlib.contextmanager
def mock_cloud(mock: str, runbook: Runbook, policy: Policy, variables: dict[str, str],
               faults: list[str], endpoint: str | None = None) -> Iterator[MockCloud]:
    if mock != "aws":
        raise UsageError(f"unknown --mock '{mock}'", hint="use --mock aws")
    try:
        import boto3

        from drorch.runbook.backends import RegistryBackends
        from drorch.testing.aws import (
            MockNetwork,
            fake_aws_environment,
            mock_aws_for,
            parse_faults,
            seed_account,
        )
    except ImportError as err:
        raise UsageError(f"drorch drill --mock aws needs {err.name}, which is not installed",
                         hint="pip install 'drorch[aws]' 'moto[server]>=5'") from None
    simple, denied = parse_faults(faults)
    if endpoint is None:
        with mock_aws_for(runbook, policy, variables, faults) as mocked:
            yield MockCloud(mocked.backends, {"session": mocked.session}, mocked.seeded)
        return
    if denied:
        raise UsageError("deny: faults need in-process moto", hint="drop --mock-endpoint")
    with fake_aws_environment(endpoint):
        session = boto3.Session(region_name=os.environ["AWS_DEFAULT_REGION"])
        seeder = seed_account(session, runbook, policy, variables, simple)
        backends = RegistryBackends(prober=MockNetwork(healthy="unhealthy" not in simple),
                                    session=session, aliases=seeder.aliases)
        yield MockCloud(backends, {"session": session}, seeder.notes)
