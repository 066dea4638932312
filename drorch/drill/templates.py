"""Drill ``verify`` templates name the steps of the drill's runbook, checked strictly.

A check such as ``{http: "http://{{ outputs.vm.ip }}/health"}`` reads the
output ``ip`` of the runbook step ``vm``, exactly like a later step of the
runbook would (SPEC §2 showed ``outputs.web-vm.ip`` with a *recovery* name;
drills settle on step names, the one namespace runbooks already use). The
rules are the runbook's: the step must exist and produce that key, a
variable must be declared under ``vars``. Problems are reported before any
resource is created, as ``policy.yaml:52 drills[0].verify[0].http: ...``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from drorch.policy import Policy, load_yaml
from drorch.policy.document import YamlDocument
from drorch.ports.errors import Diagnostic, PolicyError
from drorch.runbook.templating import Ref, TemplateError, find_refs

__all__ = ["check_verify_templates", "verify_problems"]


def check_verify_templates(policy_path: Path, policy: Policy, drill_name: str) -> None:
    """Raise ``PolicyError`` (exit 2) listing every bad template in the drill's ``verify``."""
    document = load_yaml(policy_path)
    drill = policy.drill(drill_name)
    runbook_file = policy.runbooks[drill.runbook]
    runbook_data = load_yaml(runbook_file).data
    index = next(i for i, d in enumerate(policy.drills) if d.name == drill_name)
    problems = list(verify_problems(document, index, runbook_data, policy))
    if problems:
        raise PolicyError(problems)


def verify_problems(document: YamlDocument, index: int, runbook: Mapping[str, Any],
                    policy: Policy) -> Iterator[Diagnostic]:
    drills = document.data.get("drills") or []
    raw = drills[index] if index < len(drills) and isinstance(drills[index], Mapping) else {}
    steps = [s for s in runbook.get("steps") or [] if isinstance(s, Mapping)]
    variables = [str(k) for k in runbook.get("vars") or {}]
    for path, found in find_refs(raw.get("verify") or [], ("drills", index, "verify")):
        message = str(found) if isinstance(found, TemplateError) else _problem(found, steps,
                                                                               variables, policy)
        if message:
            yield document.diagnostic(path, message)


def _problem(ref: Ref, steps: list[Mapping[str, Any]], variables: list[str],
             policy: Policy) -> str | None:
    if ref.kind == "run":
        return None
    if ref.kind == "vars":
        if ref.key in variables:
            return None
        known = ", ".join(variables) or "none"
        return f"unknown variable '{ref.key}' in {ref.text}; the runbook declares: {known}"
    step = next((s for s in steps if s.get("name") == ref.step), None)
    if step is None:
        return f"unknown step '{ref.step}' in {ref.text}; {_hint(ref, steps, policy)}"
    from drorch.runbook.checks import output_problem  # the step modules; `drorch validate` rarely needs them

    return output_problem(ref, step)


def _hint(ref: Ref, steps: list[Mapping[str, Any]], policy: Policy) -> str:
    """Point a recovery name (SPEC's old ``outputs.web-vm.ip``) at the step that launches it."""
    launches = [s.get("name") for s in steps
                if isinstance(s.get("launch"), Mapping) and s["launch"].get("recovery") == ref.step]
    if launches:
        return (f"'{ref.step}' is a recovery; verify templates name runbook steps: use "
                f"{{{{ outputs.{launches[0]}.{ref.key} }}}} (step '{launches[0]}' launches it)")
    names = ", ".join(str(s.get("name")) for s in steps) or "none"
    return f"verify templates name steps of the drill's runbook: {names}"


def check_all_verify_templates(policy_path: Path, policy: Policy) -> None:
    """Every drill's ``verify`` templates against its runbook; ``drorch validate`` runs this."""
    if not policy.drills:
        return  # nothing to check: parsing the policy's YAML again costs validate ~20 ms
    document = load_yaml(policy_path)
    problems = [problem for index, drill in enumerate(policy.drills)
                for problem in verify_problems(document, index,
                                               load_yaml(policy.runbooks[drill.runbook]).data, policy)]
    if problems:
        raise PolicyError(problems)
