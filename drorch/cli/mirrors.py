"""The mirror commands (SPEC §3): validate, plan, apply, snapshots, restore, verify, status.

Each parses, calls the Python API and renders. Each imports what it runs, after
loading the policy and starting the keys (``_keys``): the engine is imported while
scrypt runs on another thread.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from drorch.cli.common import (
    JsonOpt,
    MirrorOpt,
    PolicyArg,
    QuietOpt,
    emit_json,
    err,
    handles_errors,
    out,
    render_report,
)
from drorch.ports.errors import EXIT_FAILED, EXIT_OBJECTIVES_MISSED, DrorchError, PolicyError, SecretError

if TYPE_CHECKING:
    from drorch.policy import Policy
    from drorch.restore.restorer import RestoreStats
    from drorch.secrets import KeySource

NoLockOpt = Annotated[bool, typer.Option(
    "--no-lock", help="Write no lock file: for a read-only repository (restic's --no-lock).")]


def register(app: typer.Typer) -> None:
    """Add the mirror commands to the main app, in the order ``--help`` lists them."""
    app.command("validate")(handles_errors(validate))
    app.command("plan")(handles_errors(plan))
    app.command("apply")(handles_errors(apply))
    app.command("snapshots")(handles_errors(snapshots))
    app.command("restore")(handles_errors(restore_command))
    app.command("verify")(handles_errors(verify_command))
    app.command("status")(handles_errors(status))


def _load(policy_file: Path) -> Policy:
    """The policy, validated from the document ``main`` read before parsing the arguments, and
    whose key it started deriving then (``cli.preload``); read now if it read none."""
    from drorch.cli.preload import preloaded
    from drorch.policy import load_policy

    return load_policy(policy_file, document=preloaded(policy_file))


def _keys(policy: Policy, *, mirror: str | None = None, target: str | None = None,
          first_only: bool = False) -> KeySource:
    """The policy's key source. The keys of the targets named start deriving at once, on
    other threads (``engine.unlock.unlock_ahead``): call it before importing the engine."""
    from drorch.engine.unlock import unlock_ahead
    from drorch.secrets import key_source

    keys = key_source(policy.encryption)
    unlock_ahead(policy, keys, mirror=mirror, target=target, first_only=first_only)
    return keys


def validate(policy_file: PolicyArg, as_json: JsonOpt = False) -> None:
    """Check a policy file; every problem is listed with file:line, key path and the fix.

    With --json an invalid policy prints {"valid": false, "errors": [...]} on stdout (and
    the sentences on stderr), exit 2.
    """
    from drorch.drill.templates import check_all_verify_templates
    from drorch.policy import load_policy

    try:
        policy = load_policy(policy_file)
        check_all_verify_templates(policy_file, policy)
    except DrorchError as error:
        if as_json:
            errors = ([asdict(d) for d in error.diagnostics] if isinstance(error, PolicyError)
                      else [{"file": str(policy_file), "line": None, "path": "", "message": str(error)}])
            emit_json({"valid": False, "errors": errors})
        raise
    if as_json:
        emit_json({"valid": True, "policy": policy.metadata.name})
    else:
        out.print(f"{policy_file}: valid policy {policy.metadata.name!r} "
                  f"({len(policy.mirrors)} mirror(s), {len(policy.targets)} target(s))")


def plan(
    policy_file: PolicyArg,
    mirror: MirrorOpt = None,
    sample_mib: Annotated[float, typer.Option(
        "--sample-mib", min=0.25, help="Read at most this much of each source for the cost "
        "forecast (the whole source when it is smaller).")] = 64,
    as_json: JsonOpt = False,
) -> None:
    """Show what `apply` would do (repositories to create, snapshots to take and forget) and
    what each target will store and cost a month, from a sample of the source."""
    policy = _load(policy_file)
    try:
        keys: KeySource | None = _keys(policy, mirror=mirror)
    except SecretError as error:
        err.print(f"[yellow]note:[/] {error}; snapshot counts are not shown")
        keys = None
    from drorch.anomaly import AnomalyStore  # imported while the keys derive
    from drorch.cli import render
    from drorch.engine.plan import build_plan

    anomalies = AnomalyStore()
    the_plan = build_plan(policy, mirror=mirror, keys=keys, forecast=True,
                          sample_bytes=int(sample_mib * 2**20),
                          holds=lambda name: anomalies.hold_ns(policy.metadata.name, name))
    if as_json:
        emit_json(the_plan.to_json())
    else:
        render.plan(out, the_plan)
    if the_plan.problems:
        raise typer.Exit(EXIT_FAILED)


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
    policy = _load(policy_file)
    keys = _keys(policy, mirror=mirror)
    from drorch.anomaly import AnomalyStore  # imported while the keys derive
    from drorch.cli import render
    from drorch.cli.progress import progress_for
    from drorch.engine.apply import apply as engine_apply
    from drorch.engine.plan import build_plan
    from drorch.state.tables import StateStore

    anomalies = AnomalyStore()
    the_plan = build_plan(policy, mirror=mirror, keys=keys,
                          holds=lambda name: anomalies.hold_ns(policy.metadata.name, name))
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


def snapshots(policy_file: PolicyArg, mirror: MirrorOpt = None, as_json: JsonOpt = False) -> None:
    """List snapshots per target: ID, time, mirror, paths, files and size."""
    policy = _load(policy_file)
    keys = _keys(policy, mirror=mirror)
    from drorch.cli import render  # imported while the keys derive
    from drorch.engine.operations import list_snapshots

    listing = list_snapshots(policy, keys, mirror)
    if as_json:
        emit_json({e.target: [s.to_json() | {"id": s.id} for s in e.snapshots] for e in listing})
    else:
        render.snapshots(out, listing)



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
    no_lock: NoLockOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore a snapshot's source directory into --to, byte-identical, with metadata."""
    policy = _load(policy_file)
    keys = _keys(policy, mirror=mirror, target=target, first_only=True)
    from drorch.cli import render  # imported while the key derives
    from drorch.cli.progress import progress_for
    from drorch.engine.operations import restore
    from drorch.restore.image import ImageRestoreStats

    snap, stats = restore(policy, keys, snapshot, to, target=target,
                          include=include, mirror=mirror, progress=progress_for(err, quiet or as_json),
                          no_lock=no_lock, accept_damage=True)
    if as_json:
        emit_json({"snapshot": snap.id, "to": str(to), **stats.__dict__})
    elif isinstance(stats, ImageRestoreStats):
        out.print(f"restored image snapshot {snap.id[:8]} onto {stats.target}: "
                  f"{render.size(stats.bytes)}; compared {render.size(stats.bytes_compared)}, "
                  f"wrote {render.size(stats.bytes_written)}, zeroed {render.size(stats.bytes_zeroed)}")
    else:
        out.print(f"restored snapshot {snap.id[:8]} into {to}: {stats.files} files, "
                  f"{stats.dirs} dirs, {stats.symlinks} symlinks, {render.size(stats.bytes)}")
    from drorch.restore.restorer import RestoreStats

    if isinstance(stats, RestoreStats):
        _restore_problems(stats)


def _restore_problems(stats: RestoreStats) -> None:
    """Warnings for metadata not set; damage found is one sentence and exit 3."""
    from drorch.restore.damage import damage_sentence

    for warning in stats.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if stats.damaged:
        err.print(f"[red]error:[/] {escape(damage_sentence(stats.damaged))}")
        raise typer.Exit(EXIT_OBJECTIVES_MISSED)



def verify_command(
    policy_file: PolicyArg,
    read_data: Annotated[bool, typer.Option("--read-data", help="Read and check every byte.")] = False,
    sample: Annotated[float, typer.Option(help="With --read-data: percent of packs to read.",
                                          min=0.01, max=100)] = 100.0,
    no_lock: NoLockOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Check every target's repository; exit 3 naming each damaged pack."""
    policy = _load(policy_file)
    keys = _keys(policy)
    from drorch.cli import render  # imported while the keys derive
    from drorch.cli.progress import progress_for
    from drorch.engine.operations import verify

    reports = verify(policy, keys, read_data=read_data, sample_pct=sample,
                     progress=progress_for(err, quiet or as_json or not read_data), no_lock=no_lock)
    if as_json:
        emit_json({t: r.__dict__ | {"ok": r.ok} for t, r in reports.items()})
    else:
        for target, report in reports.items():
            render.check_report(out, target, report, read_data)
    if not all(r.ok for r in reports.values()):
        raise typer.Exit(EXIT_OBJECTIVES_MISSED)


def status(
    policy_file: PolicyArg,
    output: Annotated[str, typer.Option("--format", help="text, json or prometheus.")] = "text",
    as_json: JsonOpt = False,
) -> None:
    """RPO compliance per mirror and target: newest snapshot, its age, async lag; exit 3 on breach."""
    policy = _load(policy_file)
    keys = _keys(policy)
    from drorch.cli import render  # imported while the keys derive
    from drorch.engine.status import policy_status

    report = policy_status(policy, keys)
    render_report(report, output, as_json, lambda r: render.status(out, r))
