"""The one provider registry: every adapter, of every kind, found by name and loaded lazily.

A provider is a factory in a module of ``drorch.providers`` (or of a third-party
package). It is named by ``KIND:NAME``:

    store:SCHEME      an ObjectStore for a target URL scheme (file, s3, gs, az, libcloud)
    kms:CLOUD         a Kms for ``encryption.key: kms:CLOUD:...`` (aws, gcp, azure)
    compute:NAME      a Compute for ``recovery.provider`` (aws, libcloud)
    dns:NAME          a Dns for the runbook ``dns`` step (route53, ...)
    notify:NAME       a Notifier for the runbook ``notify`` step (sns, webhook)
    sandbox:NAME      a SandboxCloud for drills (aws)
    ebs:NAME          a BlockExporter for ``drorch export ebs`` (aws)

Third parties register through the entry-point group ``drorch.providers``
with the same ``KIND:NAME`` names (``store:mem = my_pkg.mem:open_store``). A
built-in name stays built in: a package installed beside drorch cannot take over
``file://`` or ``s3://`` (where the backups go) by registering the same name, and
a policy that uses only built-in names never scans the installed packages' entry
points (importing ``importlib.metadata`` and reading them took ~20 ms of every start).
Nothing is imported until a name is asked for, so a policy that uses only
``file://`` needs no cloud SDK; a missing SDK is one sentence naming the extra
to install, never an internal error.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from typing import Any

from drorch.ports.errors import UsageError

ENTRY_POINT_GROUP = "drorch.providers"

# name -> (module:factory, the pip extra that brings its SDK)
_BUILTIN: dict[str, tuple[str, str | None]] = {
    "store:file": ("drorch.providers.local:open_store", None),
    "store:s3": ("drorch.providers.s3:open_store", "aws"),
    "store:gs": ("drorch.providers.gcs:open_store", "gcp"),
    "store:az": ("drorch.providers.azure:open_store", "azure"),
    "store:libcloud": ("drorch.providers.libcloud_store:open_store", "libcloud"),
    "kms:aws": ("drorch.providers.aws_kms:AwsKms", "aws"),
    "kms:gcp": ("drorch.providers.gcp_kms:GcpKms", "gcp"),
    "kms:azure": ("drorch.providers.azure_kms:AzureKms", "azure"),
    "compute:aws": ("drorch.providers.aws_compute:open_compute", "aws"),
    "compute:libcloud": ("drorch.providers.libcloud_compute:open_compute", "libcloud"),
    "dns:route53": ("drorch.providers.aws_dns:open_dns", "aws"),
    "dns:rfc2136": ("drorch.providers.rfc2136:open_dns", "dns"),
    "notify:sns": ("drorch.providers.aws_notify:open_notifier", "aws"),
    "notify:webhook": ("drorch.providers.webhook:open_notifier", None),
    "sandbox:aws": ("drorch.providers.aws_sandbox:open_sandbox", "aws"),
    "ebs:aws": ("drorch.providers.aws_ebs:open_exporter", "aws"),
}

_NOUNS = {"store": "storage provider for scheme", "kms": "KMS provider", "compute": "compute provider",
          "dns": "DNS provider", "notify": "notification channel", "sandbox": "drill sandbox provider",
          "ebs": "block-store exporter"}


@cache
def _references() -> dict[str, tuple[str, str | None]]:
    from importlib.metadata import entry_points

    refs = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        refs.setdefault(_entry_point_name(ep.name), (ep.value, None))
    return refs


def _reference(key: str) -> tuple[str, str | None] | None:
    return _BUILTIN.get(key) or _references().get(key)


def _entry_point_name(name: str) -> str:
    """``KIND:NAME``; also the older ``KIND.NAME`` and a bare URL scheme (a store)."""
    kind, dot, rest = name.partition(".")
    if ":" not in name and dot and kind in _NOUNS:
        return f"{kind}:{rest}"
    return name if ":" in name else f"store:{name}"


def names(kind: str) -> list[str]:
    """Every registered name of one kind, built-in and third-party, without importing any."""
    prefix = kind + ":"
    return sorted(key.removeprefix(prefix) for key in _references() if key.startswith(prefix))


def plugin_names(kind: str) -> list[str]:
    """The names of one kind that third-party packages added."""
    return [name for name in names(kind) if f"{kind}:{name}" not in _BUILTIN]


def has(kind: str, name: str) -> bool:
    return _reference(f"{kind}:{name}") is not None


def load(kind: str, name: str) -> Callable[..., Any]:
    """The factory registered as ``kind:name``; its module (and SDK) is imported now.

    Unknown names and missing SDKs raise ``UsageError`` with the fix as hint.
    """
    entry = _reference(f"{kind}:{name}")
    if entry is None:
        raise UsageError(f"no {_NOUNS.get(kind, kind)} {name!r}",
                         hint=f"known: {', '.join(names(kind)) or 'none'}")
    ref, extra = entry
    module, _, attr = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
    except ImportError as err:
        if extra is None or (err.name or "").startswith("drorch"):
            raise
        raise UsageError(f"the {name} {kind} provider needs a library that is not installed "
                         f"({err.name})", hint=f"pip install 'drorch[{extra}]'") from None
