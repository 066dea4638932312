"""Whole-policy checks: duplicate names and names that point at nothing.

These run over the raw document (plain dicts and lists), not the validated
model, so they still report when some other part of the policy fails field
validation: the operator sees a dangling target and a misspelt key in the same
run instead of fixing one, re-running, and meeting the next. Anything that is
not the expected shape is skipped here; field validation reports it. Items
given as model instances (a ``Policy`` built in Python) are read through their
YAML aliases, so the guarantees hold however a policy was made.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePath
from typing import Any

from pydantic import BaseModel

from drorch.policy.document import KeyPath, Problem, YamlDocument, render_path
from drorch.policy.hosts import LOCAL_HOST

__all__ = ["policy_problems"]

NAMED_SECTIONS = ("sources", "targets", "mirrors", "recovery", "drills", "hosts")


def policy_problems(data: Any, context: Mapping[str, Any] | None) -> list[Problem]:
    """Every duplicate-name and dangling-reference problem in a raw policy mapping."""
    if not isinstance(data, Mapping):
        return []
    document = (context or {}).get("document")
    problems: list[Problem] = []
    for section in NAMED_SECTIONS:
        problems += _duplicates(data, section, document)
    problems += _mirror_references(data)
    problems += _references(data, "recovery", "from", "mirrors", "mirror")
    problems += _references(data, "recovery", "from_", "mirrors", "mirror")  # Python spelling
    problems += _runbook_references(data)
    problems += _host_references(data)
    problems += _standby_problems(data, (context or {}).get("base_dir"))
    problems += _boot_restore_problems(data)
    return problems


def _items(data: Mapping[str, Any], section: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    items = data.get(section)
    if isinstance(items, list | tuple):
        for index, item in enumerate(items):
            if isinstance(item, BaseModel):
                item = item.model_dump(by_alias=True)
            if isinstance(item, Mapping):
                yield index, item


def _names(data: Mapping[str, Any], section: str) -> list[str]:
    return [item["name"] for _, item in _items(data, section) if isinstance(item.get("name"), str)]


def _duplicates(
    data: Mapping[str, Any], section: str, document: YamlDocument | None
) -> Iterator[Problem]:
    first: dict[str, KeyPath] = {}
    for index, item in _items(data, section):
        name = item.get("name")
        if not isinstance(name, str):
            continue
        if name not in first:
            first[name] = (section, index, "name")
            continue
        where = _where(first[name], document)
        message = f"duplicate name '{name}'; names must be unique within {section}"
        yield (section, index, "name"), f"{message} (first at {where})"


def _where(loc: KeyPath, document: YamlDocument | None) -> str:
    """``line 9`` when the policy came from a file, else the key path of the first use."""
    line = document.line_of(loc) if document is not None else None
    return f"line {line}" if line else render_path(loc[:-1])


def _unknown(kind: str, name: str, known: list[str], section: str) -> str:
    if not known:
        return f"unknown {kind} '{name}'; no {section} are defined, add it under {section}"
    return f"unknown {kind} '{name}'; known: {', '.join(dict.fromkeys(known))}"


def _mirror_references(data: Mapping[str, Any]) -> Iterator[Problem]:
    yield from _references(data, "mirrors", "source", "sources", "source")
    targets = _names(data, "targets")
    for index, mirror in _items(data, "mirrors"):
        listed = mirror.get("targets")
        if not isinstance(listed, list | tuple):
            continue
        seen: set[str] = set()
        for position, name in enumerate(listed):
            loc = ("mirrors", index, "targets", position)
            if not isinstance(name, str):
                continue
            if name not in targets:
                yield loc, _unknown("target", name, targets, "targets")
            elif name in seen:
                yield loc, f"target '{name}' is listed twice in this mirror; list each target once"
            seen.add(name)


def _references(
    data: Mapping[str, Any], section: str, key: str, refers_to: str, kind: str
) -> Iterator[Problem]:
    """Each ``section[i].key`` must name an item of ``refers_to``."""
    known = _names(data, refers_to)
    for index, item in _items(data, section):
        name = item.get(key)
        if isinstance(name, str) and name not in known:
            yield (section, index, key), _unknown(kind, name, known, refers_to)


def _runbook_references(data: Mapping[str, Any]) -> Iterator[Problem]:
    runbooks = data.get("runbooks")
    known = [str(k) for k in runbooks] if isinstance(runbooks, Mapping) else []
    for index, drill in _items(data, "drills"):
        name = drill.get("runbook")
        if isinstance(name, str) and name not in known:
            yield ("drills", index, "runbook"), _unknown("runbook", name, known, "runbooks")


def _host_references(data: Mapping[str, Any]) -> Iterator[Problem]:
    """``sources[i].host`` names a host of ``hosts:`` (or ``local``, the default host)."""
    known = _names(data, "hosts")
    for index, source in _items(data, "sources"):
        name = source.get("host")
        if isinstance(name, str) and name != LOCAL_HOST and name not in known:
            yield ("sources", index, "host"), _unknown("host", name, known, "hosts")
def _standby_problems(data: Mapping[str, Any], base: Any) -> Iterator[Problem]:
    """``standby.host`` names a host when the policy lists hosts; the copy never overwrites its source.

    Without ``hosts:`` the standby runs where drorch runs, which is also where
    the source is read, so a standby path equal to, inside or around the
    source path would have the follower delete and rewrite the data it protects.
    """
    hosts = _names(data, "hosts") if "hosts" in data else None
    sources = {item.get("name"): item for _, item in _items(data, "sources")}
    for index, mirror in _items(data, "mirrors"):
        standby = mirror.get("standby")
        if isinstance(standby, BaseModel):
            standby = standby.model_dump(by_alias=True)
        if not isinstance(standby, Mapping):
            continue
        host = standby.get("host")
        if hosts is not None and isinstance(host, str) and host not in hosts:
            yield ("mirrors", index, "standby", "host"), _unknown("host", host, hosts, "hosts")
        source = sources.get(mirror.get("source")) or {}
        if source.get("type") not in (None, "directory"):
            yield (("mirrors", index, "standby"),
                   "a standby keeps a directory copy; this mirror's source is a "
                   f"{source.get('type')}, restore it with `drorch restore` instead")
        if host is None or host == source.get("host"):
            yield from _overlap(index, standby.get("path"), source.get("path"), base)


def _overlap(index: int, standby: Any, source: Any, base: Any) -> Iterator[Problem]:
    if not isinstance(standby, str | PurePath) or not isinstance(source, str | PurePath):
        return
    root = Path(base or Path.cwd())
    a, b = (Path(os.path.normpath(root / Path(str(p)).expanduser())) for p in (standby, source))
    if a == b or a.is_relative_to(b) or b.is_relative_to(a):
        yield (("mirrors", index, "standby", "path"),
               f"standby path {a} overlaps the source path {b} on the same host; following "
               "would overwrite the source, give the standby its own directory")


def _boot_restore_problems(data: Mapping[str, Any]) -> Iterator[Problem]:
    """A VM restores a directory mirror at boot from one of the mirror's object-store targets."""
    mirrors = {item.get("name"): item for _, item in _items(data, "mirrors")}
    sources = {item.get("name"): item for _, item in _items(data, "sources")}
    targets = {item.get("name"): item for _, item in _items(data, "targets")}
    for index, recovery in _items(data, "recovery"):
        restore = recovery.get("restore")
        if isinstance(restore, BaseModel):
            restore = restore.model_dump(by_alias=True)
        mirror = mirrors.get(recovery.get("from", recovery.get("from_")))
        if not isinstance(restore, Mapping) or mirror is None:
            continue
        loc = ("recovery", index, "restore")
        source = sources.get(mirror.get("source")) or {}
        if source.get("type") not in (None, "directory"):
            yield loc, (f"restore at boot is for directory mirrors; mirror '{mirror.get('name')}' holds a "
                        f"{source.get('type')}, which launch attaches as a disk snapshot: remove restore")
        listed = [t for t in mirror.get("targets") or [] if isinstance(t, str)]
        chosen = restore.get("target") or next(
            (t for t in listed if _object_store(targets.get(t))), None)
        if chosen is None:
            yield loc, (f"mirror '{mirror.get('name')}' has no object-store target the VM could restore "
                        "from; add an s3:// target to the mirror")
        elif chosen not in listed:
            yield (*loc, "target"), f"mirror '{mirror.get('name')}' does not write to target '{chosen}'"
        elif not _object_store(targets.get(chosen)):
            yield (*loc, "target"), (f"target '{chosen}' is not an object store the VM can reach; "
                                     "use an s3:// target")


def _object_store(target: Mapping[str, Any] | None) -> bool:
    url = (target or {}).get("url")
    return isinstance(url, str) and url.startswith("s3://")
