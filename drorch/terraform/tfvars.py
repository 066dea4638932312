"""Terraform input variables from a policy: ``terraform/{aws,gcp,azure}``.

What is read, per cloud (targets with an ``endpoint`` are S3-compatible stores
elsewhere, and ``file://``/``libcloud://`` targets belong to no cloud, so they
are left out):

- repository buckets (containers on Azure) from the targets of the cloud's
  scheme, grouped by bucket with their prefixes; ``immutable_days`` turns on
  object lock with that retention and ``object_lock_mode``;
- the region from those targets and from the cloud's recoveries, which must
  agree: a module instance lives in one region;
- instance types, subnet and security group *names* from the recoveries
  (IDs such as ``subnet-...`` name resources that already exist, so nothing is
  created for them);
- the envelope key from ``encryption.key`` when it is that cloud's KMS.

A policy that says nothing about the cloud, or says contradictory things
(one bucket both locked and not), is a ``UsageError``: writing defaults the
operator did not choose would make Terraform build the wrong landing zone.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from drorch.ports.errors import UsageError

if TYPE_CHECKING:  # annotations only: importing the models costs `drorch --help` ~0.1 s
    from drorch.policy import Policy, Recovery, Target

__all__ = ["CLOUDS", "MODULE_VARIABLES", "TFVARS_FILE", "Cloud", "terraform_variables",
           "write_terraform_variables"]

Cloud = Literal["aws", "gcp", "azure"]
CLOUDS: tuple[Cloud, ...] = get_args(Cloud)
TFVARS_FILE = "drorch.auto.tfvars.json"

# Every variable an export may write, per module; tests/terraform pins these to variables.tf.
MODULE_VARIABLES: dict[Cloud, frozenset[str]] = {
    "aws": frozenset({"name", "region", "buckets", "envelope_key_arn", "instance_types", "dr_subnet_names",
                      "dr_security_group_names", "tags"}),
    "gcp": frozenset({"name", "region", "buckets", "envelope_key_name", "dr_subnet_names",
                      "dr_security_group_names", "labels"}),
    "azure": frozenset({"name", "location", "containers", "dr_subnet_names", "dr_security_group_names",
                        "tags"}),
}

_SCHEME = {"aws": "s3", "gcp": "gs", "azure": "az"}
_NAME_LIMIT = {"aws": 30, "gcp": 14, "azure": 15}
_ID_PREFIXES = {"subnet": ("subnet-", "/subscriptions/", "projects/"), "group": ("sg-", "/subscriptions/")}


def terraform_variables(policy: Policy, cloud: Cloud) -> dict[str, Any]:
    """The module variables ``policy`` determines for ``cloud``; see the module docstring."""
    if cloud not in CLOUDS:
        raise UsageError(f"unknown cloud '{cloud}'", hint=f"use one of: {', '.join(CLOUDS)}")
    targets = [t for t in policy.targets if t.scheme == _SCHEME[cloud] and t.endpoint is None]
    recoveries = [r for r in policy.recovery if r.provider == cloud]
    key = policy.encryption.reference if policy.encryption.scheme == f"kms:{cloud}" else None
    if not targets and not recoveries and key is None:
        raise UsageError(
            f"policy '{policy.metadata.name}' has nothing on {cloud}: no {_SCHEME[cloud]}:// target, "
            f"no {cloud} recovery and no kms:{cloud} key",
            hint=f"add a {_SCHEME[cloud]}:// target or a recovery with provider: {cloud}, or export "
                 "for another --cloud")
    region = _region(targets, recoveries, cloud)
    stores = _stores(targets)
    values: dict[str, Any] = {"name": _module_name(policy.metadata.name, cloud),
                              "location" if cloud == "azure" else "region": region}
    if stores:
        values["containers" if cloud == "azure" else "buckets"] = stores
    _put(values, "dr_subnet_names", _names((r.instance.subnet for r in recoveries), "subnet"))
    _put(values, "dr_security_group_names",
         _names((g for r in recoveries for g in r.instance.security_groups), "group"))
    _BUILDERS[cloud](values, policy, recoveries, key)
    return values


def write_terraform_variables(policy: Policy, cloud: Cloud, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``drorch.auto.tfvars.json`` into ``out_dir`` (replaced atomically); return its path."""
    values = terraform_variables(policy, cloud)
    directory = Path(out_dir)
    if not directory.is_dir():
        raise UsageError(f"output directory {directory} does not exist",
                         hint=f"create it, or point --out at the module, e.g. terraform/{cloud}")
    path = directory / TFVARS_FILE
    fd, tmp = tempfile.mkstemp(prefix=".drorch-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(values, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ----------------------------------------------------------------------------- per cloud


def _aws(values: dict[str, Any], policy: Policy, recoveries: list[Recovery], key: str | None) -> None:
    _put(values, "instance_types", sorted({r.instance.type for r in recoveries}))
    if key is not None:
        values["envelope_key_arn"] = key
    values["tags"] = {"drorch:policy": policy.metadata.name}


def _gcp(values: dict[str, Any], policy: Policy, recoveries: list[Recovery], key: str | None) -> None:
    if key is not None:
        values["envelope_key_name"] = key
    values["labels"] = {"drorch-policy": _label(policy.metadata.name)}


def _azure(values: dict[str, Any], policy: Policy, recoveries: list[Recovery], key: str | None) -> None:
    values["tags"] = {"drorch-policy": policy.metadata.name}


_BUILDERS: dict[Cloud, Callable[[dict[str, Any], Policy, list[Recovery], str | None], None]] = {
    "aws": _aws, "gcp": _gcp, "azure": _azure}


# ------------------------------------------------------------------------------- helpers


def _region(targets: list[Target], recoveries: list[Recovery], cloud: Cloud) -> str:
    found: dict[str, list[str]] = {}
    for target in targets:
        if target.region:
            found.setdefault(target.region, []).append(f"target {target.name}")
    for recovery in recoveries:
        if recovery.instance.region:
            found.setdefault(recovery.instance.region, []).append(f"recovery {recovery.name}")
    if not found:
        raise UsageError(f"no {cloud} region in the policy",
                         hint="set region on the targets or instance.region on the recoveries")
    if len(found) > 1:
        listed = "; ".join(f"{region}: {', '.join(who)}" for region, who in sorted(found.items()))
        raise UsageError(f"the policy's {cloud} resources are in several regions ({listed})",
                         hint="the module deploys one region: use one region, or apply the module once "
                              "per region with hand-written tfvars")
    return next(iter(found))


def _stores(targets: list[Target]) -> dict[str, dict[str, Any]]:
    """Targets grouped by bucket (container): prefixes, and object lock as a bucket setting."""
    grouped: dict[str, list[Target]] = {}
    for target in targets:
        bucket = target.url.partition("://")[2].partition("/")[0]
        grouped.setdefault(bucket, []).append(target)
    stores: dict[str, dict[str, Any]] = {}
    for bucket, members in sorted(grouped.items()):
        locked = {bool(t.immutable_days) for t in members}
        if len(locked) > 1:
            names = ", ".join(t.name for t in members)
            raise UsageError(f"targets {names} share bucket '{bucket}' but only some set immutable_days",
                             hint="object lock is a bucket setting: give them the same immutable_days, "
                                  "or put them in separate buckets")
        store: dict[str, Any] = {"prefixes": sorted({_prefix(t) for t in members})}
        if locked == {True}:
            modes = {t.object_lock_mode for t in members}
            store.update(object_lock=True, retention_days=max(t.immutable_days or 0 for t in members),
                         object_lock_mode="COMPLIANCE" if "COMPLIANCE" in modes else "GOVERNANCE")
        stores[bucket] = store
    return stores


def _prefix(target: Target) -> str:
    return target.url.partition("://")[2].partition("/")[2].strip("/")


def _names(refs: Iterable[str | None], kind: str) -> list[str]:
    """Names to create; IDs (``subnet-...``, ``sg-...``, resource paths) already exist."""
    return sorted({ref for ref in refs if ref and not ref.startswith(_ID_PREFIXES[kind])})


def _put(values: dict[str, Any], key: str, items: list[str]) -> None:
    if items:
        values[key] = items


def _module_name(name: str, cloud: Cloud) -> str:
    """``metadata.name`` as the module's resource prefix: lowercase, hyphens, within its length."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if cloud != "aws":  # GCP and Azure names start with a letter
        cleaned = cleaned.lstrip("0123456789-")
    cleaned = cleaned[: _NAME_LIMIT[cloud]].rstrip("-")
    if not cleaned:
        raise UsageError(f"metadata.name '{name}' leaves no usable resource prefix for terraform/{cloud}",
                         hint="use a name that starts with a letter, e.g. shop-dr")
    return cleaned


def _label(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower())[:63]
