"""The real ``Backends``: adapters looked up by provider name, probes over the network.

Names are looked up in ``drorch.registry`` (``compute:NAME``, ``dns:NAME``,
``notify:NAME``; third parties add theirs through its entry-point group).
A provider module (and its SDK) is imported the first time a step needs it,
never before, so a runbook that only runs scripts needs no cloud SDK at all.

Provider names for compute are the policy's ``recovery.provider``: ``aws``,
or ``libcloud:DRIVER`` (any libcloud compute driver: ``libcloud:gce``,
``libcloud:openstack``, ``libcloud:dummy`` ...).
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from typing import Any

from drorch import registry
from drorch.ports.recovery import Compute, Dns, Notifier, Prober, ProbeResult

__all__ = ["NetworkProber", "RegistryBackends"]

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class NetworkProber:
    """Real probes: one HTTP GET (redirects not followed) or one TCP connect."""

    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(_NoRedirect())

    def http(self, url: str, expect: int, timeout: float) -> ProbeResult:
        request = urllib.request.Request(url, headers={"User-Agent": "drorch-wait"})
        try:
            with self._opener.open(request, timeout=timeout) as response:
                status = int(response.status)
        except urllib.error.HTTPError as err:
            status = err.code
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            return ProbeResult(False, f"no answer ({reason})")
        return ProbeResult(status == expect, f"HTTP {status}" + ("" if status == expect
                                                                else f", expected {expect}"))

    def tcp(self, host: str, port: int, timeout: float) -> ProbeResult:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return ProbeResult(True, "port open")
        except OSError as err:
            return ProbeResult(False, f"cannot connect ({err.strerror or err})")


class RegistryBackends:
    """Adapters by name (see the module docstring); ``options`` go to every factory."""

    def __init__(self, prober: Prober | None = None, **options: Any) -> None:
        self._prober = prober or NetworkProber()
        self.options = options
        self._cache: dict[tuple[str, str, str | None], Any] = {}

    @property
    def prober(self) -> Prober:
        return self._prober

    def compute(self, provider: str, region: str | None) -> Compute:
        name, _, driver = provider.partition(":")
        key = ("compute", provider, region)
        if key not in self._cache:
            factory = registry.load("compute", name)
            args = {"driver": driver} if driver else {}
            self._cache[key] = factory(region=region, **args, **self.options)
        return self._cache[key]  # type: ignore[no-any-return]

    def dns(self, provider: str) -> Dns:
        key = ("dns", provider, None)
        if key not in self._cache:
            self._cache[key] = registry.load("dns", provider)(**self.options)
        return self._cache[key]  # type: ignore[no-any-return]

    def notifier(self, channel: str) -> Notifier:
        key = ("notify", channel, None)
        if key not in self._cache:
            self._cache[key] = registry.load("notify", channel)(**self.options)
        return self._cache[key]  # type: ignore[no-any-return]
