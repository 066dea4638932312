"""``drorch test RUNBOOK --mock aws``: run a runbook end to end against emulated clouds.

This is how a runbook is tested in CI: the real engine and the real AWS
adapters run against an in-process moto account seeded with what the
runbook needs (see ``drorch.testing.aws``). Approve gates pass,
``restore`` and ``reverse`` write to a scratch directory, and the journal is
a scratch database, so nothing outside the test is touched. The report is
JUnit-style: one test case per step (and per undo), pass/fail/skip, with the
error and output tail of a failure; ``--junit`` writes it as XML for CI.
"""

from __future__ import annotations

import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drorch.ports.errors import UsageError
from drorch.runbook.engine import Engine, Reporter, RunOptions
from drorch.runbook.journal import Journal
from drorch.runbook.results import RunResult, StepResult
from drorch.runbook.runner import load_for_run

__all__ = ["TestReport", "run_test"]

_VERDICT = {"done": "PASS", "failed": "FAIL", "skipped": "SKIP", "pending": "NOT RUN",
            "running": "NOT RUN"}


@dataclass
class TestReport:
    """The outcome of one ``drorch test``: the run, what was seeded, which faults."""

    __test__ = False  # not a pytest class

    runbook: str
    file: str
    result: RunResult
    seconds: float
    seeded: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.result.status == "succeeded"

    def cases(self) -> list[tuple[str, StepResult]]:
        named = [(f"{s.name} ({s.action or 'not run'})", s) for s in self.result.steps]
        return named + [(f"undo {u.name} ({u.action})", u) for u in self.result.undo]

    def lines(self) -> list[str]:
        out = [f"drorch test {self.file} --mock aws" + "".join(f" --fault {f}" for f in self.faults)]
        out += [f"  seeded: {note}" for note in self.seeded]
        for name, step in self.cases():
            took = f"{step.duration_s:.2f}s" if step.duration_s is not None else "-"
            line = f"{_VERDICT.get(step.state, step.state.upper()):<8}{name:<32}{took:>8}"
            out.append(line + (f"  {step.error}" if step.error else ""))
        counts = {v: sum(1 for _, s in self.cases() if _VERDICT.get(s.state) == v)
                  for v in ("PASS", "FAIL", "SKIP", "NOT RUN")}
        summary = ", ".join(f"{n} {v.lower()}" for v, n in counts.items() if n)
        rto = f"; measured RTO {self.result.rto_s:.2f}s" if self.result.rto_s is not None else ""
        out.append(f"{'PASSED' if self.passed else 'FAILED'}: {summary} in {self.seconds:.2f}s{rto}")
        return out

    def junit_xml(self) -> str:
        cases = self.cases()
        suite = ET.Element("testsuite", {
            "name": self.runbook, "tests": str(len(cases)),
            "failures": str(sum(1 for _, s in cases if s.state == "failed")),
            "skipped": str(sum(1 for _, s in cases if s.state in ("skipped", "pending", "running"))),
            "time": f"{self.seconds:.3f}"})
        for name, step in cases:
            case = ET.SubElement(suite, "testcase", {"classname": self.runbook, "name": name,
                                                     "time": f"{step.duration_s or 0:.3f}"})
            if step.state == "failed":
                failure = ET.SubElement(case, "failure", {"message": step.error or "failed"})
                failure.text = step.tail or ""
            elif step.state != "done":
                ET.SubElement(case, "skipped", {"message": _VERDICT.get(step.state, step.state)})
        if self.result.rto_s is not None:
            properties = ET.SubElement(suite, "properties")
            ET.SubElement(properties, "property",
                          {"name": "rto_seconds", "value": f"{self.result.rto_s:.3f}"})
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {"runbook": self.runbook, "file": self.file, "passed": self.passed,
                "seconds": self.seconds, "seeded": self.seeded, "faults": self.faults,
                "rto_s": self.result.rto_s,
                "steps": [{"name": n, "state": s.state, "seconds": s.duration_s, "error": s.error}
                          for n, s in self.cases()]}


def run_test(file: Path, *, policy_path: Path | None = None, overrides: Mapping[str, str] | None = None,
             faults: list[str] | None = None, report: Reporter | None = None,
             backoff_base: float = 1.0) -> TestReport:
    """Run ``file`` inside moto; the policy is found next to the runbook when not given."""
    try:
        from drorch.testing.aws import mock_aws_for, parse_faults
    except ImportError as err:
        raise UsageError(f"drorch test --mock aws needs {err.name}, which is not installed",
                         hint="pip install 'drorch[aws]' 'moto[server]>=5'") from None

    faults = list(faults or [])
    parse_faults(faults)  # a typo in --fault is a usage error before anything starts
    runbook, policy, policy_path = load_for_run(file, policy_path, discover=True)
    variables = runbook.resolve_vars(overrides)
    started = time.monotonic()
    with (tempfile.TemporaryDirectory(prefix="drorch-test-") as scratch,
          mock_aws_for(runbook, policy, variables, faults) as mock):
        engine = Engine(runbook, file=file, journal=Journal(Path(scratch) / "state.db"),
                        backends=mock.backends, policy=policy, policy_path=policy_path,
                        options=RunOptions(yes=True, sandbox=Path(scratch), backoff_base=backoff_base),
                        report=report)
        result = engine.start(variables)
    return TestReport(runbook.name, str(file), result, time.monotonic() - started, mock.seeded, faults)
