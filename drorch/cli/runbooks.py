"""Runbook commands: ``runbook run/resume/approve/show``, ``failover``, ``failback``, ``test``.

Each command parses, calls ``drorch.runbook``, and renders the result: progress
lines while the run goes, then the steps, the undo, the timeline and the
measured RTO. A failed run ends with one sentence on stderr naming the step,
its error and the last line it printed (the full tail is above, on stdout).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from drorch.cli.common import JsonOpt, PolicyArg, emit_json, err, exits_hard, handles_errors, out
from drorch.policy.durations import format_duration
from drorch.ports.errors import EXIT_FAILED, EXIT_OBJECTIVES_MISSED, RunFailed, UsageError

if TYPE_CHECKING:
    from drorch.runbook import RunOptions, RunPlan, RunResult
    from drorch.runbook.preflight import Preflight

# Commands import the runbook engine when they run: `drorch --help` must not (drorch.lazy).

RunbookArg = Annotated[Path, typer.Argument(help="Runbook file (apiVersion: drorch/v1, kind: Runbook).")]
RunIdArg = Annotated[str, typer.Argument(help="Run ID (or a unique prefix), as printed when it started.")]
VarOpt = Annotated[list[str] | None, typer.Option("--var", help="Set a runbook variable: NAME=VALUE "
                                                  "(repeatable).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Preflight: print the plan with templates "
                                         "resolved and check, per step, that what it needs exists "
                                         "(data and its age, credentials, zone, image, subnet); change "
                                         "nothing; exit 1 naming the step that would fail.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Pass every approve gate.")]
NoUndoOpt = Annotated[bool, typer.Option("--no-undo", help="On failure stop without undoing "
                                         "finished steps (the run can be resumed).")]
FleetOpt = Annotated[bool, typer.Option("--fleet", help="Run as one engine workflow: each step on "
                                       "the host it names (on:), approve as a signal.")]
FleetHostOpt = Annotated[str | None, typer.Option("--host", help="With --fleet: where steps without "
                                                  "on: run (default: the policy's first host).")]
PolicyOpt = Annotated[Path | None, typer.Option("--policy", "-p", help="Policy whose recoveries and "
                                                "mirrors the runbook uses.")]

runbook_app = typer.Typer(help="Run, resume and approve runbooks (failover, failback, custom).",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the runbook commands to the main app."""
    app.add_typer(runbook_app, name="runbook")
    app.command("failover")(exits_hard(failover))  # --fleet reaches the engine
    app.command("failback")(exits_hard(failback))
    app.command("test")(handles_errors(mock_test))


# ------------------------------------------------------------------------------ rendering


class _Progress:
    """Prints one plain line per event while a run goes (to stderr with --json)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.run_id: str | None = None
        self.t0 = time.monotonic()

    def __call__(self, event: str, step: str | None, detail: str) -> None:
        if event in ("run-started", "run-resumed"):
            self.run_id = detail
        if self.quiet:
            return
        clock = f"{time.monotonic() - self.t0:7.1f}s"
        who = f"{step}: " if step else ""
        console = err if event == "approval-waiting" else out
        console.print(f"{clock}  {event:<16} {who}{detail}", markup=False)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 120 else format_duration(_td(seconds))


def _td(seconds: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=seconds)


def render_plan(plan: RunPlan) -> None:
    out.print(f"plan for runbook {plan.runbook} (dry run: nothing is changed)", markup=False)
    if plan.variables:
        out.print("vars: " + ", ".join(f"{k}={v}" for k, v in plan.variables.items()), markup=False)
    for number, step in enumerate(plan.steps, 1):
        out.print(f"{number:>2}. {step.name}: {step.summary}", markup=False)
        out.print(f"    runs: {step.runs}; timeout {step.timeout}; attempts {step.attempts}",
                  markup=False)
        if step.undo:
            out.print(f"    undo: {step.undo}", markup=False)


def render_preflight(preflight: Preflight) -> None:
    out.print("preflight (what each step needs, checked now):", markup=False)
    for check in preflight.checks:
        out.print(f"  {check.state.upper():<17} {check.step} ({check.action}) {check.what}: {check.detail}",
                  markup=False)
    verdict = "every step has what it needs" if preflight.ok else "a step would fail (above)"
    out.print(f"preflight: {verdict}", markup=False)


def render_result(result: RunResult) -> None:
    out.print(f"\nrun {result.run_id}  runbook {result.runbook}  {result.status}", markup=False)
    for step in result.steps:
        shown = step.error or ", ".join(f"{k}={v}" for k, v in step.outputs.items()
                                        if k != "tail" and v not in ("", None))
        attempts = f"x{step.attempts}" if step.attempts > 1 else ""
        out.print(f"  {step.name:<14} {step.action:<8} {step.state:<8} {attempts:<4} "
                  f"{_duration(step.duration_s):>7}  {shown}", markup=False)
        if step.state == "failed" and step.tail:
            out.print("    output tail:", markup=False)
            for line in step.tail.splitlines()[-20:]:
                out.print(f"    | {line}", markup=False)
    for undo in result.undo:
        out.print(f"  undo {undo.name:<9} {undo.action:<8} {undo.state:<8}      "
                  f"{_duration(undo.duration_s):>7}  {undo.error or ''}", markup=False)
    if result.rto_s is not None:
        objective = ""
        if result.rto_objective_s is not None:
            verdict = "met" if result.rto_met else "MISSED"
            objective = f" (objective {format_duration(_td(result.rto_objective_s))}: {verdict})"
        out.print(f"measured RTO: {result.rto_s:.1f}s{objective}", markup=False)


def render_timeline(result: RunResult) -> None:
    if not result.timeline:
        return
    t0 = result.timeline[0].at
    out.print("timeline:", markup=False)
    for event in result.timeline:
        step = f"{event.step}{' (undo)' if event.phase == 'undo' else ''}" if event.step else ""
        out.print(f"  +{event.at - t0:8.2f}s  {event.event:<16} {step:<18} {event.detail or ''}",
                  markup=False)


def finish(result: RunResult, as_json: bool) -> None:
    """Render, then exit with the run's code; a failure ends in one sentence on stderr."""
    if as_json:
        emit_json(result.to_json())
    else:
        render_result(result)
    if result.status == "succeeded" and result.exit_code == EXIT_OBJECTIVES_MISSED:
        err.print(f"[red]error:[/] run {result.run_id} recovered in {result.rto_s:.1f}s, slower than "
                  f"the RTO of {format_duration(_td(result.rto_objective_s or 0))}")
        raise typer.Exit(EXIT_OBJECTIVES_MISSED)
    if result.exit_code != 0:
        raise _failure(result)
    raise typer.Exit(0)


def _failure(result: RunResult) -> RunFailed:
    failed = result.failed
    step = failed.name if failed else result.failed_step or "?"
    action = f" ({failed.action})" if failed and failed.action else ""
    last = next((ln.strip() for ln in reversed((failed.tail or "").splitlines()) if ln.strip()), "") \
        if failed else ""
    said = f" (last output: {last[:160]})" if last and last not in (result.error or "") else ""
    if result.status == "stopped":
        after = f"nothing undone (--no-undo); fix it and run `drorch runbook resume {result.run_id}`"
    elif result.status == "failed-undo":
        bad = ", ".join(u.name for u in result.undo if u.state != "done")
        after = f"undo failed for {bad}: clean those up by hand"
    else:
        undone = ", ".join(u.name for u in result.undo)
        after = f"undid {undone}" if undone else "nothing to undo"
    return RunFailed(f"run {result.run_id} of {result.runbook} failed at step '{step}'{action}: "
                     f"{result.error}{said}; {after}", run_id=result.run_id, step=step)


def _interrupted(progress: _Progress) -> typer.Exit:
    where = f"`drorch runbook resume {progress.run_id}`" if progress.run_id else "`drorch runbook resume`"
    err.print(f"[red]interrupted[/]; the journal records every finished step: continue with {where}")
    return typer.Exit(130)


def _run(file: Path, policy: Path | None, var: list[str] | None, dry_run: bool, options: RunOptions,
         as_json: bool) -> None:
    from drorch.runbook import parse_vars, preflight_runbook, run_runbook

    overrides = parse_vars(var)
    if dry_run:
        plan, preflight = preflight_runbook(file, policy, overrides)
        if as_json:
            emit_json(plan.to_json() | {"preflight": preflight.to_json()})
        else:
            render_plan(plan)
            render_preflight(preflight)
        failed = preflight.first_failure
        if failed is not None:
            err.print(f"[red]error:[/] preflight: step '{failed.step}' ({failed.action}) would fail: "
                      f"{failed.what}: {failed.detail}", highlight=False, markup=True)
            raise typer.Exit(EXIT_FAILED)
        return
    progress = _Progress(as_json)
    try:
        result = run_runbook(file, policy_path=policy, overrides=overrides, options=options,
                             report=progress)
    except KeyboardInterrupt:
        raise _interrupted(progress) from None
    finish(result, as_json)


# ------------------------------------------------------------------------------ commands


@runbook_app.command("run")
@handles_errors
def run_command(file: RunbookArg, policy: PolicyOpt = None, var: VarOpt = None,
                dry_run: DryRunOpt = False, yes: YesOpt = False, no_undo: NoUndoOpt = False,
                as_json: JsonOpt = False) -> None:
    """Run a runbook: steps in order, journalled; on failure undo finished steps and exit 1.

    Exit 0 recovered; 1 a step failed (named, with its output tail); 2 invalid
    runbook or usage; 3 recovered but slower than the recovery's RTO.
    """
    from drorch.runbook import RunOptions

    _run(file, policy, var, dry_run, RunOptions(yes=yes, no_undo=no_undo), as_json)


@runbook_app.command("resume")
@handles_errors
def resume_command(run_id: RunIdArg, yes: YesOpt = False, no_undo: NoUndoOpt = False,
                   rerun_interrupted: Annotated[bool, typer.Option(
                       "--rerun-interrupted", help="Run a non-idempotent step that a crash "
                       "interrupted again (check what it did first).")] = False,
                   as_json: JsonOpt = False) -> None:
    """Continue a crashed or stopped run at its first unfinished step; finished steps never rerun."""
    from drorch.runbook import RunOptions, resume_run

    progress = _Progress(as_json)
    options = RunOptions(yes=yes, no_undo=no_undo, rerun_interrupted=rerun_interrupted)
    try:
        result = resume_run(run_id, options=options, report=progress)
    except KeyboardInterrupt:
        raise _interrupted(progress) from None
    finish(result, as_json)


@runbook_app.command("approve")
@exits_hard
def approve_command(run_id: RunIdArg, step: Annotated[str | None, typer.Option(
        help="The approve step to pass (default: the next open one).")] = None,
        as_json: JsonOpt = False) -> None:
    """Let a waiting run pass its approve gate, with a one-time token (it passes one gate)."""
    from drorch.runbook import approve_run
    if run_id.startswith("fleet-"):
        from drorch.cli.fleet import approve_fleet_run

        return approve_fleet_run(run_id, step, as_json)
    run, gate, token = approve_run(run_id, step)
    if as_json:
        emit_json({"run": run, "step": gate, "token": token})
        return
    out.print(f"approved step '{gate}' of run {run} (one-time token {token}); a waiting run "
              f"continues within seconds, a stopped one with `drorch runbook resume {run}`",
              markup=False)


@runbook_app.command("list")
@exits_hard
def list_command(limit: Annotated[int, typer.Option(help="How many runs, newest first.")] = 20,
                 fleet: Annotated[bool, typer.Option(
                     "--fleet", help="List the fleet runs the engine ($DRORCH_ENGINE) knows instead.")
                 ] = False,
                 as_json: JsonOpt = False) -> None:
    """List recent runbook runs from the journal: ID, runbook, status, start, measured RTO."""
    from drorch.runbook import list_runs

    if fleet:
        from drorch.cli.fleet import list_fleet_runs

        return list_fleet_runs(limit, as_json)
    runs = list_runs(limit)
    if as_json:
        emit_json([{"id": r.id, "runbook": r.runbook, "status": r.status, "started": r.started,
                    "rto_s": r.rto_s, "failed_step": r.failed_step, "file": r.file} for r in runs])
        return
    for r in runs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started))
        rto = f"RTO {r.rto_s:.1f}s" if r.rto_s is not None else ""
        rto = rto or (f"at {r.failed_step}" if r.failed_step else "")
        out.print(f"{r.id}  {when}  {r.runbook:<20} {r.status:<12} {rto}", markup=False)


@runbook_app.command("show")
@exits_hard
def show_command(run_id: RunIdArg, as_json: JsonOpt = False) -> None:
    """Show a run from the journal (a fleet-… run: from the engine): steps, undo, timeline, RTO."""
    from drorch.runbook import show_run

    if run_id.startswith("fleet-"):
        from drorch.cli.fleet import show_fleet_run

        return show_fleet_run(run_id, as_json)
    result = show_run(run_id)
    if as_json:
        emit_json(result.to_json())
        return
    render_result(result)
    render_timeline(result)


def _policy_runbook(policy_file: Path, which: str) -> Path:
    from drorch.policy import load_policy

    policy = load_policy(policy_file)
    path = policy.runbooks.get(which)
    if path is None:
        raise UsageError(f"policy {policy.metadata.name} has no {which} runbook",
                         hint=f"add runbooks: {{{which}: runbooks/{which}.yaml}} to {policy_file}")
    return Path(path)


def failover(policy_file: PolicyArg, var: VarOpt = None, dry_run: DryRunOpt = False,
             yes: YesOpt = False, no_undo: NoUndoOpt = False, as_json: JsonOpt = False,
             fleet: FleetOpt = False, host: FleetHostOpt = None) -> None:
    """Run the policy's failover runbook: bring service up at the DR site."""
    if fleet and not dry_run:
        from drorch.cli.fleet import run_fleet_runbook

        return run_fleet_runbook(policy_file, "failover", var, host, yes, no_undo, True, None, as_json)

    from drorch.runbook import RunOptions

    _run(_policy_runbook(policy_file, "failover"), policy_file, var, dry_run,
         RunOptions(yes=yes, no_undo=no_undo), as_json)


def failback(policy_file: PolicyArg, var: VarOpt = None, dry_run: DryRunOpt = False,
             yes: YesOpt = False, no_undo: NoUndoOpt = False, as_json: JsonOpt = False,
             fleet: FleetOpt = False, host: FleetHostOpt = None) -> None:
    """Run the policy's failback runbook: bring the outage's data home, then switch back."""
    if fleet and not dry_run:
        from drorch.cli.fleet import run_fleet_runbook

        return run_fleet_runbook(policy_file, "failback", var, host, yes, no_undo, True, None, as_json)

    from drorch.runbook import RunOptions

    _run(_policy_runbook(policy_file, "failback"), policy_file, var, dry_run,
         RunOptions(yes=yes, no_undo=no_undo), as_json)


def mock_test(file: RunbookArg,
         mock: Annotated[str, typer.Option("--mock", help="Emulator to run against (aws: in-process "
                                           "moto).")],
         policy: PolicyOpt = None, var: VarOpt = None,
         junit: Annotated[Path | None, typer.Option("--junit", help="Also write a JUnit XML "
                                                    "report here.")] = None,
         fault: Annotated[list[str] | None, typer.Option("--fault", help="Inject a fault: unhealthy, "
                                                         "instance-limit, ami-missing, zone-missing, "
                                                         "deny:SERVICE:ACTION (repeatable).")] = None,
         as_json: JsonOpt = False) -> None:
    """Run a runbook end to end against emulated clouds; print pass/fail per step (JUnit style).

    Seeds what the runbook needs (VPC, subnet, security groups, base image, data
    snapshot, hosted zone, SNS topic); approve gates pass; probes of VMs are
    simulated. Exit 0 when every step passed, 1 otherwise.
    """
    from drorch.runbook import parse_vars
    from drorch.testing.runbooks import run_test

    if mock != "aws":
        raise UsageError(f"unknown --mock '{mock}'", hint="use --mock aws")
    progress = _Progress(as_json)
    report = run_test(file, policy_path=policy, overrides=parse_vars(var), faults=fault or [],
                      report=progress)
    if junit is not None:
        junit.write_text(report.junit_xml())
    if as_json:
        emit_json(report.to_json())
    else:
        for line in report.lines():
            out.print(line, markup=False)
    raise typer.Exit(0 if report.passed else EXIT_FAILED)
