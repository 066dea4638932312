"""Fleet commands (SPEC §7): ``fleet dev|apply|run|status``, ``agent``, ``failover --fleet``.

Every command parses, calls ``drorch.fleet`` and renders. The Temporal SDK is
imported by ``drorch.fleet`` only when a fleet command runs; without the
``fleet`` extra these commands fail with one sentence naming it.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from drorch.cli.common import (
    JsonOpt,
    PolicyArg,
    emit_json,
    engine_used,
    err,
    exits_hard,
    handles_errors,
    out,
    render_report,
)
from drorch.policy import load_policy
from drorch.ports.errors import EXIT_FAILED, UsageError

T = TypeVar("T")

EngineOpt = Annotated[str | None, typer.Option("--engine", help="Engine HOST:PORT (default: "
                                               "$DRORCH_ENGINE or 127.0.0.1:7233).")]
HostOpt = Annotated[list[str], typer.Option("--host", help="Host to act for (repeatable).")]

fleet_app = typer.Typer(help="Fleet mode: agents on every host, mirrors and runbooks as engine "
                        "workflows (Temporal).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(fleet_app, name="fleet")
    app.command("agent")(exits_hard(agent))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    from drorch.fleet.engine_client import require_sdk

    try:
        require_sdk()
    except UsageError:
        coro.close()
        raise
    engine_used["on"] = True
    import asyncio  # here, not at the top: asyncio costs `drorch --help` ~30 ms

    return asyncio.run(coro)


async def _client(engine: str | None) -> Any:
    from drorch.fleet.engine_client import EngineConfig, connect

    return await connect(EngineConfig.from_env(engine))


@fleet_app.command("dev")
@handles_errors
def dev(port: Annotated[int, typer.Option(help="Frontend port on 127.0.0.1.")] = 7233,
        db: Annotated[Path | None, typer.Option(help="SQLite file for the engine's state (default: "
                                                "$DRORCH_HOME/fleet/engine.db).")] = None) -> None:
    """Run the embedded engine (the Temporal dev server) on 127.0.0.1 until SIGTERM or Ctrl-C."""
    from drorch.fleet import devserver

    stopping: dict[str, float] = {}

    def on_signal(signum: int, frame: Any) -> None:
        stopping.setdefault("at", time.monotonic())  # the loop below stops the server

    signal.signal(signal.SIGTERM, on_signal)  # before the start: a SIGTERM meanwhile still stops it
    signal.signal(signal.SIGINT, on_signal)
    server = devserver.start(port, db, log=sys.stderr.fileno())
    err.print(f"fleet engine on {server.address} (state in {server.db}); agents: "
              f"DRORCH_ENGINE={server.address} drorch agent --host NAME POLICY", markup=False)
    while server.process.poll() is None:
        if "at" in stopping:
            server.stop()  # SIGTERM to its group, SIGKILL after the grace period
            break
        time.sleep(0.2)
    if "at" not in stopping:
        raise UsageError(f"the fleet engine exited on its own with code {server.process.returncode}")
    err.print("fleet engine stopped", markup=False)


def agent(policy_file: PolicyArg, host: HostOpt,
          engine: EngineOpt = None,
          grace: Annotated[float, typer.Option(help="Seconds a running job may take to finish on "
                                               "SIGTERM before it is handed back.")] = 30.0,
          max_jobs: Annotated[int, typer.Option(help="Concurrent jobs per host.")] = 4,
          pollers: Annotated[int, typer.Option(help="Pollers per host queue (1 when serving many "
                                               "hosts).")] = 2,
          export: Annotated[str | None, typer.Option("--export", help="Print a service unit "
                                                     "instead of running: systemd.")] = None) -> None:
    """A worker for HOST: runs its mirrors and the runbook steps that name it; heartbeats."""
    from drorch.fleet.agent import AgentOptions, run_agent, systemd_unit

    if not host:
        raise UsageError("name the host this agent acts for", hint="drorch agent --host NAME POLICY")
    if export is not None:
        if export != "systemd":
            raise UsageError(f"unknown --export '{export}'", hint="use --export systemd")
        load_policy(policy_file)
        sys.stdout.write(systemd_unit(policy_file, tuple(host), grace))
        return
    from drorch.fleet.engine_client import EngineConfig

    options = AgentOptions(tuple(host), grace_s=grace, max_jobs=max_jobs, pollers=pollers)
    err.print(f"agent for {', '.join(host)} ({policy_file}) starting", markup=False)
    _run(run_agent(policy_file, options, EngineConfig.from_env(engine)))
    err.print("agent stopped", markup=False)


@fleet_app.command("apply")
@exits_hard
def apply(policy_file: PolicyArg, engine: EngineOpt = None, as_json: JsonOpt = False) -> None:
    """Register the policy: one engine schedule per mirror; stale schedules are removed."""
    from drorch.fleet.schedules import apply_schedules

    policy = load_policy(policy_file)

    async def go() -> Any:
        return await apply_schedules(await _client(engine), policy)

    changes = _run(go())
    if as_json:
        emit_json(changes.__dict__)
        return
    for verb in ("created", "updated", "unchanged", "deleted"):
        for mirror in getattr(changes, verb):
            out.print(f"{verb:<10} schedule of mirror {mirror}", markup=False)
    for mirror, why in changes.skipped.items():
        out.print(f"{'skipped':<10} mirror {mirror}: {why}", markup=False)


@fleet_app.command("run")
@exits_hard
def run(policy_file: PolicyArg, mirror: Annotated[str, typer.Option("--mirror", "-m", help="Mirror to run.")],
        wait: Annotated[bool, typer.Option("--wait", help="Wait for the result.")] = False,
        engine: EngineOpt = None, as_json: JsonOpt = False) -> None:
    """Run one mirror now on its source's host; a run already going is joined, never doubled."""
    from drorch.fleet.control import start_mirror

    policy = load_policy(policy_file)

    async def go() -> Any:
        return await start_mirror(await _client(engine), policy, mirror, wait=wait)

    started = _run(go())
    if as_json:
        emit_json(started.__dict__)
    else:
        verb = "already running" if started.already_running else "started"
        out.print(f"mirror {mirror}: {verb} as {started.workflow_id}", markup=False)
        if started.result:
            res = started.result
            out.print(f"mirror {mirror}: snapshot {(res.get('snapshot') or '-')[:8]} on host "
                      f"{res.get('host')} by {res.get('agent')}", markup=False)
    if started.result and started.result.get("exit_code"):
        raise typer.Exit(started.result["exit_code"])


@fleet_app.command("status")
@exits_hard
def status(policy_file: PolicyArg, engine: EngineOpt = None,
           output: Annotated[str, typer.Option("--format", help="text, json or prometheus.")] = "text",
           dead_after: Annotated[float, typer.Option(help="Seconds without a poll after which an agent "
                                                     "is dead.")] = 90.0,
           as_json: JsonOpt = False) -> None:
    """Per host: agent alive, last heartbeat; per mirror: newest snapshot, RPO, running job; exit 3 on
    breach or a dead agent."""
    from drorch.fleet.status import fleet_status
    from drorch.secrets import key_source

    policy = load_policy(policy_file)
    keys = key_source(policy.encryption)

    async def go() -> Any:
        return await fleet_status(await _client(engine), policy, keys, dead_after_s=dead_after)

    render_report(_run(go()), output, as_json, _render_status)


def _render_status(report: Any) -> None:
    from drorch.cli import render

    for a in report.agents:
        seen = "never" if a.last_heartbeat_s is None else f"{a.last_heartbeat_s:.0f}s ago"
        state = "alive" if a.alive else "DEAD"
        out.print(f"host {a.host:<12} {state:<6} last heartbeat {seen}  agents: "
                  f"{', '.join(a.agents) or '-'}", markup=False)
    for j in report.jobs:
        if j.running:
            beat = f", heartbeat {j.last_heartbeat_s:.0f}s ago" if j.last_heartbeat_s is not None else ""
            out.print(f"mirror {j.mirror:<10} running on {j.host} (attempt {j.attempt}, "
                      f"{j.agent or 'waiting for an agent'}{beat})", markup=False)
    render.status(out, report.report)


@exits_hard
def run_fleet_runbook(policy_file: Path, which: str, variables: list[str] | None, host: str | None,
                      yes: bool, no_undo: bool, wait: bool, engine: str | None, as_json: bool) -> None:
    """``failover/failback POLICY --fleet``: the runbook as one workflow, each step on its host."""
    from drorch.fleet.control import heartbeat_s, new_run_id, start_runbook
    from drorch.fleet.messages import RunbookInput
    from drorch.fleet.steps import default_start_host, load_policy_runbook, step_specs
    from drorch.runbook import parse_vars

    policy = load_policy(policy_file)
    runbook, _ = load_policy_runbook(policy, which)
    start = host or default_start_host(policy)
    policy.host(start)
    run = RunbookInput(policy.metadata.name, which, new_run_id(), start,
                       runbook.resolve_vars(parse_vars(variables)), step_specs(runbook, start),
                       yes=yes, no_undo=no_undo, heartbeat_s=heartbeat_s())
    err.print(f"fleet run {run.run_id} of {runbook.name} started (approve with: drorch runbook approve "
              f"{run.run_id})", markup=False)

    async def go() -> dict[str, Any]:
        return await start_runbook(await _client(engine), run, wait=wait)

    result = _run(go())
    if as_json:
        emit_json(result)
    else:
        for step in result.get("steps", []):
            out.print(f"  {step['name']:<14} {step['action']:<8} {step['state']:<8} on {step['host']}"
                      f"  {step.get('error') or ''}", markup=False)
        out.print(f"run {run.run_id} {result['status']}", markup=False)
    if result["status"] not in ("succeeded", "running"):
        err.print(f"error: fleet run {run.run_id} failed at step '{result.get('failed_step')}': "
                  f"{result.get('error')}", markup=False)
        raise typer.Exit(EXIT_FAILED)


@exits_hard
def approve_fleet_run(run_id: str, step: str | None, as_json: bool, engine: str | None = None) -> None:
    """``runbook approve fleet-…``: a signal to the run's workflow."""
    import getpass

    from drorch.fleet.control import approve

    async def go() -> dict[str, Any]:
        return await approve(await _client(engine), run_id, step, f"{getpass.getuser()} (signal)")

    progress = _run(go())
    if as_json:
        emit_json(progress)
    else:
        out.print(f"approved fleet run {run_id} (a signal to its workflow)", markup=False)


def show_fleet_run(run_id: str, as_json: bool, engine: str | None = None) -> None:
    """``runbook show fleet-…``: the run's status and steps, from the engine."""
    from drorch.fleet.control import show_run

    async def go() -> dict[str, Any]:
        return await show_run(await _client(engine), run_id)

    shown = _run(go())
    if as_json:
        emit_json(shown)
        return
    rto = f", RTO {shown['rto_s']:.1f}s" if shown.get("rto_s") is not None else ""
    name = shown.get("runbook") or "runbook"
    out.print(f"fleet run {run_id} ({name}): {shown['status']}{rto}", markup=False)
    for step in shown["steps"]:
        error = f"  {step['error']}" if step.get("error") else ""
        out.print(f"  {step['name']:<20} on {step.get('host') or '-':<12} {step['state']:<10}{error}",
                  markup=False)
    if shown.get("waiting"):
        out.print(f"  waiting for approval at '{shown['waiting']}': drorch runbook approve {run_id}",
                  markup=False)
    if shown.get("note"):
        err.print(f"note: {shown['note']}", markup=False)


def list_fleet_runs(limit: int, as_json: bool, engine: str | None = None) -> None:
    """``runbook list --fleet``: the newest fleet runs the engine knows."""
    from drorch.fleet.control import list_runs

    async def go() -> list[dict[str, Any]]:
        return await list_runs(await _client(engine), limit)

    runs = _run(go())
    if as_json:
        emit_json(runs)
        return
    for run in runs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started"]))
        out.print(f"{run['id']}  {when}  {run['status']}", markup=False)
