"""Drill and scheduler commands: ``drill``, ``schedule``.

Both parse, call ``drorch.drill`` / ``drorch.schedule`` and render; progress
goes to stdout as plain lines (stderr with ``--json``), and a failed drill
ends with one sentence on stderr saying why.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from drorch.cli.common import JsonOpt, PolicyArg, QuietOpt, emit_json, err, handles_errors, out
from drorch.policy.durations import parse_duration
from drorch.ports.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from drorch.drill.result import DrillResult

NameOpt = Annotated[str | None, typer.Option("--name", "-n", help="The drill to run (default: the "
                                             "policy's only drill).")]
ReportOpt = Annotated[list[Path] | None, typer.Option(
    "--report", help="Write a report; the extension picks the format: .html (for people), .xml "
    "(JUnit, for CI), .json. Repeatable.")]
MockOpt = Annotated[str | None, typer.Option("--mock", help="Run against emulated clouds (aws: "
                                             "in-process moto), e.g. in CI.")]
MockEndpointOpt = Annotated[str | None, typer.Option(
    "--mock-endpoint", help="With --mock aws: use the moto server at this URL instead of in-process "
    "moto (its state outlives the drill).")]
FaultOpt = Annotated[list[str] | None, typer.Option("--fault", help="With --mock: inject a fault "
                                                    "(unhealthy, instance-limit, ...; repeatable).")]
VerifyTimeoutOpt = Annotated[str, typer.Option("--verify-timeout", help="How long checks may take to "
                                               "pass after the runbook finished (e.g. 30s, 2m).")]


def register(app: typer.Typer) -> None:
    """Add the drill and scheduler commands to the main app."""
    app.command("drill")(handles_errors(drill))
    app.command("schedule")(handles_errors(schedule))


class _Lines:
    """One plain line per event while the drill goes."""

    def __init__(self, quiet: bool, to_stderr: bool) -> None:
        self.quiet, self.console = quiet, err if to_stderr else out
        self.t0 = time.monotonic()

    def __call__(self, event: str, step: str | None, detail: str) -> None:
        if not self.quiet:
            who = f"{step}: " if step else ""
            self.console.print(f"{time.monotonic() - self.t0:7.1f}s  {event:<17} {who}{detail}",
                               markup=False)


def render_drill(result: DrillResult) -> None:
    from drorch.drill.result import format_seconds

    out.print(f"\n{result.summary()}", markup=False)
    for check in result.checks:
        out.print(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}", markup=False)
    out.print(f"  RTO {format_seconds(result.rto_s)} (objective {format_seconds(result.rto_objective_s)}), "
              f"RPO {format_seconds(result.rpo_s)} (objective {format_seconds(result.rpo_objective_s)})",
              markup=False)
    if result.cleanup_errors:
        for line in result.cleanup_errors:
            out.print(f"  cleanup problem: {line}", markup=False)


def drill(policy_file: PolicyArg, name: NameOpt = None, report: ReportOpt = None, mock: MockOpt = None,
          mock_endpoint: MockEndpointOpt = None, fault: FaultOpt = None,
          verify_timeout: VerifyTimeoutOpt = "2m", quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """Rehearse recovery in a sandbox: run the drill's runbook, verify, measure RTO/RPO, clean up.

    Production is never touched: VMs go to an isolated network with sandbox names and
    tags, restores go to scratch space, DNS changes, notifications and fencing of the
    primary are recorded only. Everything the drill created is removed afterwards,
    also on failure or SIGTERM/SIGINT, and each drill first sweeps what a killed one
    left. Exit 0 passed; 3 a check failed or an objective was missed; 2 bad input.
    """
    from drorch.drill import DrillHistory, DrillOptions, run_drill, write_report
    from drorch.drill.reports import check_report_path

    for path in report or []:
        check_report_path(path)
    if (mock_endpoint or fault) and not mock:
        raise UsageError("--mock-endpoint and --fault need --mock", hint="add --mock aws")
    try:
        window = parse_duration(verify_timeout).total_seconds()
    except ValueError as error:
        raise UsageError(f"invalid --verify-timeout: {error}") from None
    options = DrillOptions(verify_timeout_s=window, mock=mock, mock_endpoint=mock_endpoint,
                           faults=tuple(fault or ()))
    result = run_drill(policy_file, name, options=options, report=_Lines(quiet, as_json))
    history = DrillHistory().recent(result.policy, limit=12)
    for path in report or []:
        write_report(result, path, history)
    if as_json:
        emit_json(result.to_json())
    else:
        render_drill(result)
        for path in report or []:
            out.print(f"  report: {path}", markup=False)
    if result.exit_code != EXIT_OK:
        err.print(f"[red]error:[/] {result.label}drill {result.drill} of policy {result.policy} "
                  f"{result.verdict}: {'; '.join(result.reasons())}", highlight=False)
    raise typer.Exit(result.exit_code)


ExportOpt = Annotated[str | None, typer.Option("--export", help="Print units for the OS scheduler instead "
                                               "of running: systemd or cron.")]
JobOpt = Annotated[list[str] | None, typer.Option("--job", help="Only this job, as mirror:NAME or "
                                                  "drill:NAME (repeatable).")]
MetricsOpt = Annotated[int | None, typer.Option("--metrics-port", help="Serve the status exposition at "
                                                "http://127.0.0.1:PORT/metrics.")]
GraceOpt = Annotated[float, typer.Option("--grace", help="On SIGTERM, seconds to let running jobs finish "
                                         "or clean up before exiting.")]


def schedule(policy_file: PolicyArg, export: ExportOpt = None, job: JobOpt = None,
             metrics_port: MetricsOpt = None, grace: GraceOpt = 60.0) -> None:
    """Run mirrors and drills on their schedules, in the foreground (systemd, cron or container).

    Cron schedules fire at their times; `continuous` mirrors snapshot within seconds of a
    change. Runs missed while the scheduler was down are caught up once; a run still
    going is never started twice; SIGTERM lets running jobs finish or clean up. Only one
    scheduler runs per state store. With --export, print systemd units or crontab lines
    for the same schedule and exit.
    """
    import signal
    import threading

    from drorch.policy import load_policy
    from drorch.schedule import export_cron, export_systemd, run_schedule

    if export is not None:
        exporters = {"systemd": export_systemd, "cron": export_cron}
        if export not in exporters:
            raise UsageError(f"unknown --export '{export}'", hint="use --export systemd or --export cron")
        policy = load_policy(policy_file)
        out.file.write(exporters[export](policy, policy_file))
        return
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        if not stop.is_set():
            log(f"{signal.Signals(signum).name}: stopping; running jobs finish or clean up first")
        stop.set()

    def log(line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        out.print(f"{stamp}  {line}", markup=False, highlight=False)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    run_schedule(policy_file, stop, only=job, metrics_port=metrics_port, log=log, grace_s=grace)
    log("scheduler stopped")
