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

from collections.abc import Iterator, Mapping
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
