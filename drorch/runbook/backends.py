"""The real ``Backends``: adapters looked up by provider name, probes over the network.

Built-in names map to modules in ``drorch.providers``; third parties add
their own through the ``drorch.providers`` entry-point group with names
``compute.NAME``, ``dns.NAME`` or ``notify.NAME`` pointing at a factory.
A provider module (and its SDK) is imported the first time a step needs it,
never before, so a runbook that only runs scripts needs no cloud SDK at all.

Provider names for compute are the policy's ``recovery.provider``: ``aws``,
or ``libcloud:DRIVER`` (any libcloud compute driver: ``libcloud:gce``,
``libcloud:openstack``, ``libcloud:dummy`` ...).
"""

from __future__ import annotations

import importlib
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from drorch.errors import UsageError
from drorch.runbook.protocols import Compute, Dns, Notifier, Prober, ProbeResult

__all__ = ["NetworkProber", "RegistryBackends"]

_BUILTIN = {
    "compute.aws": "drorch.providers.aws_compute:open_compute",
    "compute.libcloud": "drorch.providers.libcloud_compute:open_compute",
    "dns.route53": "drorch.providers.aws_dns:open_dns",
    "dns.rfc2136": "drorch.providers.rfc2136:open_dns",
    "notify.sns": "drorch.providers.aws_notify:open_notifier",
    "notify.webhook": "drorch.providers.webhook:open_notifier",
}


def _factory(kind: str, name: str) -> Callable[..., Any]:
    refs = dict(_BUILTIN)
    refs.update({ep.name: ep.value for ep in entry_points(group="drorch.providers")})
    ref = refs.get(f"{kind}.{name}")
    if ref is None:
        known = ", ".join(sorted(k.split(".", 1)[1] for k in refs if k.startswith(kind + ".")))
        raise UsageError(f"no {kind} provider named '{name}'", hint=f"known: {known}")
    module, _, attr = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
    except ImportError as err:
        extra = {"aws": "aws", "route53": "aws", "sns": "aws", "libcloud": "libcloud",
                 "rfc2136": "dns"}.get(name, name)
        raise UsageError(f"the {name} provider needs a library that is not installed ({err.name})",
                         hint=f"pip install 'drorch[{extra}]'") from None


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
            factory = _factory("compute", name)
            args = {"driver": driver} if driver else {}
            self._cache[key] = factory(region=region, **args, **self.options)
        return self._cache[key]  # type: ignore[no-any-return]

    def dns(self, provider: str) -> Dns:
        key = ("dns", provider, None)
        if key not in self._cache:
            self._cache[key] = _factory("dns", provider)(**self.options)
        return self._cache[key]  # type: ignore[no-any-return]

    def notifier(self, channel: str) -> Notifier:
        key = ("notify", channel, None)
        if key not in self._cache:
            self._cache[key] = _factory("notify", channel)(**self.options)
        return self._cache[key]  # type: ignore[no-any-return]
