"""The ``drorch`` command: parse, call the Python API, render for humans or ``--json``.

No logic lives here. Errors reach the operator once, as one sentence on stderr
with the exit code of SPEC §3; the traceback only with ``--debug``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from drorch.cli.common import (
    JsonOpt,
    MirrorOpt,
    PolicyArg,
    QuietOpt,
    debug,
    emit_json,
    err,
    handles_errors,
    out,
)
from drorch.cli.drills import register as register_drill_commands
from drorch.cli.exports import register as register_export_commands
from drorch.cli.images import register as register_image_commands
from drorch.cli.runbooks import register as register_runbook_commands
from drorch.ports.errors import EXIT_FAILED, EXIT_OBJECTIVES_MISSED, SecretError

if TYPE_CHECKING:
    from drorch.policy import Policy
    from drorch.secrets import KeySource

# Each command imports what it runs: `drorch --help` and `drorch validate` must start
# in under 150 ms, so the engine (apply, repository, rich tables) is not imported here.

app = typer.Typer(
    name="drorch",
    help="Disaster-recovery orchestrator: mirror what a policy protects into encrypted, "
    "deduplicated restic-format repositories, prove the copies restore, bring service back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
@app.callback()
def main_options(
    debug_flag: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """Exit codes: 0 ok, 1 failed, 2 usage or invalid policy, 3 ran but objectives missed."""
    debug["on"] = debug_flag


def _keys(policy: Policy) -> KeySource:
    from drorch.secrets import key_source

    return key_source(policy.encryption)


@app.command()
@handles_errors
def validate(policy_file: PolicyArg, as_json: JsonOpt = False) -> None:
    """Check a policy file; every problem is listed with file:line, key path and the fix."""
    from drorch.drill.templates import check_all_verify_templates
    from drorch.policy import load_policy

    policy = load_policy(policy_file)
    check_all_verify_templates(policy_file, policy)
    if as_json:
        emit_json({"valid": True, "policy": policy.metadata.name})
    else:
        out.print(f"{policy_file}: valid policy {policy.metadata.name!r} "
                  f"({len(policy.mirrors)} mirror(s), {len(policy.targets)} target(s))")


@app.command()
@handles_errors
def plan(policy_file: PolicyArg, mirror: MirrorOpt = None, as_json: JsonOpt = False) -> None:
    """Show what `apply` would do: repositories to create, snapshots to take and forget."""
    from drorch.cli import render
    from drorch.engine.plan import build_plan
    from drorch.policy import load_policy

    policy = load_policy(policy_file)
    try:
        keys: KeySource | None = _keys(policy)
    except SecretError as error:
        err.print(f"[yellow]note:[/] {error}; snapshot counts are not shown")
        keys = None
    the_plan = build_plan(policy, mirror=mirror, keys=keys)
    if as_json:
        emit_json(the_plan.to_json())
    else:
        render.plan(out, the_plan)
    if the_plan.problems:
        raise typer.Exit(EXIT_FAILED)


@app.command()
@handles_errors
def apply(
    policy_file: PolicyArg,
    mirror: MirrorOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before retention "
                                      "forgets snapshots.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan.")] = False,
    lock_wait: Annotated[float, typer.Option(help="Seconds to wait for another run's lock.")] = 0,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Make every mirror current now: snapshot, dedup, compress, encrypt, upload, retention.

    Unchanged files are not re-read; only new data is uploaded. An interrupted run
    leaves no partial snapshot and the next run reuses what was uploaded. Exit 3
    when some files could not be read (they are listed).
    """
    from drorch.cli import render
    from drorch.cli.progress import progress_for
    from drorch.engine.apply import apply as engine_apply
    from drorch.engine.plan import build_plan
    from drorch.policy import load_policy
    from drorch.state.tables import StateStore

    policy = load_policy(policy_file)
    keys = _keys(policy)
    the_plan = build_plan(policy, mirror=mirror, keys=keys)
    if dry_run:
        emit_json(the_plan.to_json()) if as_json else render.plan(out, the_plan)
        return
    if the_plan.snapshots_to_forget and not yes and sys.stdin.isatty() and not as_json:
        render.plan(out, the_plan)
        typer.confirm("Retention will forget snapshots. Proceed?", abort=True)
    progress = progress_for(err, quiet or as_json)
    result = engine_apply(the_plan, progress=progress, state=StateStore(), lock_wait_s=lock_wait)
    if as_json:
        emit_json(result.to_json())
    else:
        render.apply_result(out, err, result)
    raise typer.Exit(result.exit_code)


@app.command()
@handles_errors
def snapshots(policy_file: PolicyArg, mirror: MirrorOpt = None, as_json: JsonOpt = False) -> None:
    """List snapshots per target: ID, time, mirror, paths, files and size."""
    from drorch.cli import render
    from drorch.engine.operations import list_snapshots
    from drorch.policy import load_policy

    policy = load_policy(policy_file)
    listing = list_snapshots(policy, _keys(policy), mirror)
    if as_json:
        emit_json({e.target: [s.to_json() | {"id": s.id} for s in e.snapshots] for e in listing})
    else:
        render.snapshots(out, listing)


@app.command("restore")
@handles_errors
def restore_command(
    policy_file: PolicyArg,
    snapshot: Annotated[str, typer.Argument(help="`latest` or a snapshot ID (prefix).")],
    to: Annotated[Path, typer.Option("--to", help="Directory to restore into (created); for a disk "
                                     "image snapshot: an image file, a block device or a directory.")],
    include: Annotated[list[str] | None, typer.Option(
        help="Only paths matching this glob (relative to the source), repeatable.")] = None,
    target: Annotated[str | None, typer.Option(help="Target to restore from; default: the "
                                               "first target of the policy (or of --mirror).")] = None,
    mirror: MirrorOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore a snapshot's source directory into --to, byte-identical, with metadata."""
    from drorch.cli import render
    from drorch.cli.progress import progress_for
    from drorch.engine.operations import restore
    from drorch.policy import load_policy
    from drorch.restore.image import ImageRestoreStats

    policy = load_policy(policy_file)
    snap, stats = restore(policy, _keys(policy), snapshot, to, target=target,
                          include=include, mirror=mirror, progress=progress_for(err, quiet or as_json))
    if as_json:
        emit_json({"snapshot": snap.id, "to": str(to), **stats.__dict__})
    elif isinstance(stats, ImageRestoreStats):
        out.print(f"restored image snapshot {snap.id[:8]} onto {stats.target}: "
                  f"{render.size(stats.bytes)}; compared {render.size(stats.bytes_compared)}, "
                  f"wrote {render.size(stats.bytes_written)}, zeroed {render.size(stats.bytes_zeroed)}")
    else:
        out.print(f"restored snapshot {snap.id[:8]} into {to}: {stats.files} files, "
                  f"{stats.dirs} dirs, {stats.symlinks} symlinks, {render.size(stats.bytes)}")


@app.command("verify")
@handles_errors
def verify_command(
    policy_file: PolicyArg,
    read_data: Annotated[bool, typer.Option("--read-data", help="Read and check every byte.")] = False,
    sample: Annotated[float, typer.Option(help="With --read-data: percent of packs to read.",
                                          min=0.01, max=100)] = 100.0,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Check every target's repository; exit 3 naming each damaged pack."""
    from drorch.cli import render
    from drorch.cli.progress import progress_for
    from drorch.engine.operations import verify
    from drorch.policy import load_policy

    policy = load_policy(policy_file)
    reports = verify(policy, _keys(policy), read_data=read_data, sample_pct=sample,
                     progress=progress_for(err, quiet or as_json or not read_data))
    if as_json:
        emit_json({t: r.__dict__ | {"ok": r.ok} for t, r in reports.items()})
    else:
        for target, report in reports.items():
            render.check_report(out, target, report, read_data)
    if not all(r.ok for r in reports.values()):
        raise typer.Exit(EXIT_OBJECTIVES_MISSED)


@app.command()
@handles_errors
def status(
    policy_file: PolicyArg,
    output: Annotated[str, typer.Option("--format", help="text, json or prometheus.")] = "text",
    as_json: JsonOpt = False,
) -> None:
    """RPO compliance per mirror and target: newest snapshot, its age, async lag; exit 3 on breach."""
    from drorch.cli import render
    from drorch.engine.status import policy_status
    from drorch.policy import load_policy

    policy = load_policy(policy_file)
    report = policy_status(policy, _keys(policy))
    fmt = "json" if as_json else output
    if fmt == "json":
        emit_json(report.to_json())
    elif fmt == "prometheus":
        sys.stdout.write(report.to_prometheus())
    else:
        render.status(out, report)
    if report.breach:
        raise typer.Exit(EXIT_OBJECTIVES_MISSED)


register_runbook_commands(app)
register_drill_commands(app)
register_export_commands(app)
register_image_commands(app)  # after exports: joins its `export` group if it made one


def main() -> None:
    app()
