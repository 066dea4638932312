"""Whole-runbook checks: duplicate steps, template references, names in the policy.

Like the policy's checks these run over the raw document, so a dangling
``{{ outputs.vmm.ip }}`` is reported in the same run as a misspelt key. Each
problem sits at the key path of the string that holds the bad reference, so
the operator reads ``failover.yaml:14 steps[3].dns.value: unknown step 'vmm'
in {{ outputs.vmm.ip }}; earlier steps: vm, healthy``.

Reference rules: a step may use the outputs of steps before it; its ``undo``
may also use its own outputs (it runs only after the step finished); ``when``
is decided before the step runs, so it may not. Output keys must be ones the
earlier step's action produces (``Action.OUTPUTS`` plus a script's declared
``outputs``); variables must be declared under ``vars``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from drorch.policy.document import KeyPath, Problem, YamlDocument
from drorch.runbook.steps import ACTIONS
from drorch.runbook.templating import Ref, TemplateError, find_refs

__all__ = ["VAR_NAME", "output_problem", "runbook_problems"]

VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def runbook_problems(data: Any, context: Mapping[str, Any] | None) -> list[Problem]:
    if not isinstance(data, Mapping):
        return []
    steps = [s if isinstance(s, Mapping) else {} for s in _list(data.get("steps"))]
    raw_vars = data.get("vars")
    variables = [str(k) for k in raw_vars] if isinstance(raw_vars, Mapping) else []
    document = (context or {}).get("document")
    problems = list(_var_names(raw_vars))
    problems += _duplicates(steps, document)
    problems += _references(steps, variables)
    policy = (context or {}).get("policy")
    if policy is not None:
        problems += _policy_names(steps, policy)
    return problems


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _action_key(step: Mapping[str, Any]) -> str | None:
    keys = [k for k in step if k in ACTIONS]
    return keys[0] if len(keys) == 1 else None


def _var_names(raw_vars: Any) -> Iterator[Problem]:
    if isinstance(raw_vars, Mapping):
        for name in raw_vars:
            if not isinstance(name, str) or not VAR_NAME.fullmatch(name):
                yield ("vars", name), (f"invalid variable name '{name}'; use letters, digits, "
                                       "'_' and '-', starting with a letter or '_'")


def _duplicates(steps: list[Mapping[str, Any]], document: YamlDocument | None) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for index, step in enumerate(steps):
        name = step.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            line = document.line_of(("steps", first[name], "name")) if document else None
            where = f"line {line}" if line else f"steps[{first[name]}]"
            yield ("steps", index, "name"), f"duplicate step '{name}'; step names must be unique " \
                                            f"(first at {where})"
        else:
            first[name] = index


def _references(steps: list[Mapping[str, Any]], variables: list[str]) -> Iterator[Problem]:
    positions: dict[str, int] = {}
    for index, step in enumerate(steps):
        if isinstance(step.get("name"), str):
            positions.setdefault(step["name"], index)
    checker = _RefChecker(steps, positions, variables)
    for index, step in enumerate(steps):
        action = _action_key(step)
        if action is not None:
            yield from checker.check(step[action], ("steps", index, action), index, own=False)
        if "when" in step:
            yield from checker.check(step["when"], ("steps", index, "when"), index, own=False)
        undo = step.get("undo")
        if isinstance(undo, Mapping) and (undo_action := _action_key(undo)) is not None:
            yield from checker.check(undo[undo_action], ("steps", index, "undo", undo_action), index,
                                     own=True)


class _RefChecker:
    def __init__(self, steps: list[Mapping[str, Any]], positions: dict[str, int],
                 variables: list[str]) -> None:
        self.steps = steps
        self.positions = positions
        self.variables = variables

    def check(self, value: Any, path: KeyPath, index: int, *, own: bool) -> Iterator[Problem]:
        for sub, found in find_refs(value, path):
            if isinstance(found, TemplateError):
                yield sub, str(found)
            elif (message := self._problem(found, index, own)) is not None:
                yield sub, message

    def _problem(self, ref: Ref, index: int, own: bool) -> str | None:
        if ref.kind == "vars":
            if ref.key in self.variables:
                return None
            known = (f"defined vars: {', '.join(self.variables)}" if self.variables
                     else f"no vars are defined; declare it under vars: {{{ref.key}: VALUE}}")
            return f"unknown variable '{ref.key}' in {ref.text}; {known}"
        if ref.kind == "run":
            return None
        assert ref.step is not None
        position = self.positions.get(ref.step)
        if position is None:
            earlier = [s["name"] for s in self.steps[:index] if isinstance(s.get("name"), str)]
            known = f"earlier steps: {', '.join(earlier)}" if earlier else "no step runs before this one"
            return f"unknown step '{ref.step}' in {ref.text}; {known}"
        if position > index:
            return (f"step '{ref.step}' runs after this one, so {ref.text} has no value yet; "
                    "use outputs of earlier steps only")
        if position == index and not own:
            return f"a step cannot use its own outputs ({ref.text}); only its undo can"
        return output_problem(ref, self.steps[position])


def output_problem(ref: Ref, step: Mapping[str, Any]) -> str | None:
    """Why ``step`` (raw runbook mapping) does not produce the output ``ref`` reads, or None.

    The one rule for ``{{ outputs.STEP.KEY }}``, used by runbooks and by drill
    ``verify`` templates alike: KEY must be among what the step's action declares.
    """
    action = _action_key(step)
    if action is None:
        return None  # the step itself is reported as invalid
    produced = ACTIONS[action].declared_outputs(step[action])
    if ref.key not in produced:
        return (f"step '{ref.step}' ({action}) has no output '{ref.key}' in {ref.text}; "
                f"its outputs: {', '.join(produced)}")
    return None


def _policy_names(steps: list[Mapping[str, Any]], policy: Any) -> Iterator[Problem]:
    """Recoveries and mirrors named by steps must exist in the policy they run with."""
    recoveries = [r.name for r in policy.recovery]
    mirrors = {m.name: list(m.targets) for m in policy.mirrors}
    for index, step in enumerate(steps):
        for prefix, body in ((("steps", index), step), (("steps", index, "undo"), step.get("undo"))):
            if not isinstance(body, Mapping) or (action := _action_key(body)) is None:
                continue
            params = body[action]
            if not isinstance(params, Mapping):
                continue
            path = (*prefix, action)
            if action in ("launch", "fence"):
                yield from _named(params, "recovery", recoveries, path, "recovery", "recovery")
            if action in ("restore", "reverse"):
                yield from _named(params, "mirror", list(mirrors), path, "mirror", "mirrors")
                mirror, target = params.get("mirror"), params.get("target")
                if action == "restore" and mirror in mirrors and isinstance(target, str) \
                        and target not in mirrors[mirror]:
                    yield (*path, "target"), (f"mirror '{mirror}' does not write to target "
                                              f"'{target}'; its targets: {', '.join(mirrors[mirror])}")


def _named(params: Mapping[str, Any], key: str, known: list[str], path: KeyPath, kind: str,
           section: str) -> Iterator[Problem]:
    name = params.get(key)
    if isinstance(name, str) and "{{" not in name and name not in known:
        listed = f"known: {', '.join(known)}" if known else f"the policy defines no {section}"
        yield (*path, key), f"unknown {kind} '{name}' in the policy; {listed}"
