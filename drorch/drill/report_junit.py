"""The drill as JUnit XML, for CI gates: one test case per runbook step, check and objective.

A CI job fails the build on ``<failure>``: a failed step, a failed check, an
RTO or RPO over its objective. Skipped steps (``when:`` false, or kept out of
production by the sandbox) are ``<skipped>``. Suite properties carry the
figures (``rto_seconds``, ``rpo_seconds``, objectives) for dashboards.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from drorch.drill.result import DrillResult, format_seconds

__all__ = ["junit_xml"]


def _case(suite: ET.Element, classname: str, name: str, seconds: float | None) -> ET.Element:
    return ET.SubElement(suite, "testcase", {"classname": classname, "name": name,
                                             "time": f"{seconds or 0:.3f}"})


def junit_xml(result: DrillResult) -> str:
    classname = f"drill.{result.policy}.{result.drill}"
    suite = ET.Element("testsuite", {"name": f"{result.label}drill {result.drill} ({result.policy})",
                                     "timestamp": f"{result.started:.0f}"})
    failures = skipped = 0
    for phase in result.phases:
        if phase.kind not in ("step", "undo"):
            continue
        took = (phase.finished - phase.started) if phase.started and phase.finished else None
        label = f"{'undo ' if phase.kind == 'undo' else ''}step {phase.name} ({phase.detail or 'not run'})"
        case = _case(suite, classname, label, took)
        if phase.state == "failed":
            failures += 1
            message = result.error if phase.name == result.failed_step else "failed"
            ET.SubElement(case, "failure", {"message": message or "failed"})
        elif phase.state != "done":
            skipped += 1
            ET.SubElement(case, "skipped", {"message": phase.state})
    for check in result.checks:
        took = (check.finished - check.started) if check.started and check.finished else None
        case = _case(suite, classname, f"check {check.name}", took)
        if not check.passed:
            failures += 1
            ET.SubElement(case, "failure", {"message": check.detail})
    for label, met, value, objective in (("RTO", result.rto_met, result.rto_s, result.rto_objective_s),
                                         ("RPO", result.rpo_met, result.rpo_s, result.rpo_objective_s)):
        case = _case(suite, classname, f"{label} within objective", 0)
        figures = f"{label} {format_seconds(value)}, objective {format_seconds(objective)}"
        if met is False:
            failures += 1
            ET.SubElement(case, "failure", {"message": figures})
        elif met is None:
            skipped += 1
            ET.SubElement(case, "skipped", {"message": f"not measured ({figures})"})
    for problem in result.data_problems:
        failures += 1
        case = _case(suite, classname, "data is recoverable", 0)
        ET.SubElement(case, "failure", {"message": problem})
    if result.interrupted:
        failures += 1
        case = _case(suite, classname, "drill completed", 0)
        ET.SubElement(case, "failure", {"message": f"interrupted by {result.interrupted}"})
    total = (result.finished or result.started) - result.started
    suite.attrib.update({"tests": str(len(suite.findall("testcase"))), "failures": str(failures),
                         "errors": "0", "skipped": str(skipped), "time": f"{total:.3f}"})
    properties = ET.Element("properties")
    props: tuple[tuple[str, object], ...] = (("drill_id", result.drill_id), ("verdict", result.verdict),
                      ("kind", "MOCK" if result.mock else "real"), ("mock", result.mock),
                      ("rto_seconds", result.rto_s), ("rto_objective_seconds", result.rto_objective_s),
                      ("rpo_seconds", result.rpo_s), ("rpo_objective_seconds", result.rpo_objective_s))
    for key, prop in props:
        if prop is not None:
            ET.SubElement(properties, "property", {"name": key, "value": str(prop)})
    suite.insert(0, properties)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
