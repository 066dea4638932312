"""The runbook API the CLI calls: run, resume, approve, plan, show.

Each function loads what it needs (runbook, policy, journal), calls the
engine and returns a result the CLI renders; none of them prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from drorch.policy import Policy, load_policy, load_yaml
from drorch.ports.errors import PolicyError, RunNotResumable, UsageError
from drorch.ports.recovery import Backends
from drorch.runbook.backends import RegistryBackends
from drorch.runbook.engine import Engine, Reporter, RunOptions
from drorch.runbook.journal import Journal, RunRow
from drorch.runbook.model import Runbook, load_runbook
from drorch.runbook.plan import RunPlan, plan_run
from drorch.runbook.results import RESUMABLE, RunResult, load_result

__all__ = [
    "approve_run",
    "discover_policy",
    "list_runs",
    "load_for_run",
    "parse_vars",
    "plan_runbook",
    "resume_run",
    "run_runbook",
    "show_run",
]


def parse_vars(pairs: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` from ``--var`` flags; ``UsageError`` for one without ``=``."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"invalid --var '{pair}'", hint="write --var NAME=VALUE")
        out[key.strip()] = value
    return out


def discover_policy(runbook_file: Path) -> Path | None:
    """The one policy next to (or one level above) the runbook whose ``runbooks:`` lists it."""
    target = runbook_file.resolve()
    found = []
    for folder in dict.fromkeys((target.parent, target.parent.parent)):
        for candidate in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            try:
                doc = load_yaml(candidate)
            except PolicyError:
                continue
            runbooks = doc.data.get("runbooks")
            if doc.data.get("kind") != "MirrorPolicy" or not isinstance(runbooks, dict):
                continue
            if any(isinstance(p, str) and (candidate.parent / p).resolve() == target
                   for p in runbooks.values()):
                found.append(candidate)
    return found[0] if len(found) == 1 else None


def load_for_run(file: Path, policy_path: Path | None, *, discover: bool = False
                 ) -> tuple[Runbook, Policy | None, Path | None]:
    """The runbook, validated against its policy when it has one; the policy is required
    when a step reads recoveries or mirrors."""
    if policy_path is None and discover:
        policy_path = discover_policy(file)
    policy = load_policy(policy_path) if policy_path is not None else None
    runbook = load_runbook(file, policy=policy)
    needing = runbook.needs_policy()
    if needing and policy is None:
        raise UsageError(f"steps {', '.join(needing)} of {file} read recoveries or mirrors "
                         "from a policy, and no policy was given",
                         hint="pass --policy POLICY (the file whose runbooks: lists this runbook)")
    return runbook, policy, policy_path


def plan_runbook(file: Path, policy_path: Path | None, overrides: Mapping[str, str]) -> RunPlan:
    runbook, _, _ = load_for_run(file, policy_path)
    return plan_run(runbook, runbook.resolve_vars(overrides))


def run_runbook(file: Path, *, policy_path: Path | None = None,
                overrides: Mapping[str, str] | None = None, options: RunOptions | None = None,
                backends: Backends | None = None, journal: Journal | None = None,
                report: Reporter | None = None, discover: bool = False) -> RunResult:
    runbook, policy, policy_path = load_for_run(file, policy_path, discover=discover)
    variables = runbook.resolve_vars(overrides)
    engine = Engine(runbook, file=file, journal=journal or Journal(),
                    backends=backends or RegistryBackends(), policy=policy, policy_path=policy_path,
                    options=options, report=report)
    return engine.start(variables)


def resume_run(run_id: str, *, options: RunOptions | None = None, backends: Backends | None = None,
               journal: Journal | None = None, report: Reporter | None = None) -> RunResult:
    journal = journal or Journal()
    run = journal.run(run_id)
    if run.status not in RESUMABLE:
        raise RunNotResumable(f"run {run.id} has status {run.status} and cannot be resumed",
                              hint="start a new run with `drorch runbook run`")
    file = Path(run.file)
    if not file.is_file():
        raise RunNotResumable(f"run {run.id}: its runbook {file} no longer exists",
                              hint="put the file back where it was to resume")
    policy_path = Path(run.policy) if run.policy else None
    runbook, policy, _ = load_for_run(file, policy_path)
    engine = Engine(runbook, file=file, journal=journal, backends=backends or RegistryBackends(),
                    policy=policy, policy_path=policy_path, options=options, report=report)
    return engine.resume(run)


def approve_run(run_id: str, step: str | None = None, *, journal: Journal | None = None
                ) -> tuple[str, str, str]:
    """Issue a one-time approval token; returns (run ID, gate it is for, token)."""
    journal = journal or Journal()
    run = journal.run(run_id)
    if run.status not in RESUMABLE:
        raise UsageError(f"run {run.id} has status {run.status}; there is nothing left to approve")
    runbook = load_runbook(run.file)
    rows = journal.steps(run.id)
    gates = []
    for index, candidate in enumerate(runbook.steps):
        row = rows.get(("do", index))
        if candidate.action_key == "approve" and (row is None or row.state not in ("done", "skipped")):
            gates.append(candidate.name)
    if step is not None and step not in gates:
        raise UsageError(f"run {run.id} has no open approve step '{step}'",
                         hint=f"open approve steps: {', '.join(gates) or 'none'}")
    if not gates:
        raise UsageError(f"run {run.id} has no approve step left to pass")
    gate = step or gates[0]
    return run.id, gate, journal.issue_approval(run.id, step)


def list_runs(limit: int = 20, *, journal: Journal | None = None) -> list[RunRow]:
    return (journal or Journal()).runs(limit)


def show_run(run_id: str, *, journal: Journal | None = None) -> RunResult:
    journal = journal or Journal()
    run = journal.run(run_id)
    names = None
    if Path(run.file).is_file():
        try:
            names = [s.name for s in load_runbook(run.file).steps]
        except PolicyError:
            names = None
    return load_result(journal, run.id, names)
