"""Human views of plans and results; the JSON views are the objects' ``to_json``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from drorch.repository.timefmt import to_datetime

if TYPE_CHECKING:  # annotations only: `drorch apply` need not import status, operations, check
    from drorch.engine.apply import ApplyResult, TargetResult
    from drorch.engine.operations import TargetSnapshots
    from drorch.engine.plan import Plan, TargetPlan
    from drorch.engine.status import StatusReport
    from drorch.repository.check import CheckReport


def size(nbytes: int | float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(nbytes) < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"


def _target_line(t: TargetPlan) -> str:
    if t.problem:
        return f"  [red]![/] {t.target}  {t.location}  [red]{t.problem}[/]"
    if t.create_repository:
        return f"  [green]+[/] {t.target}  {t.location}  create repository, take snapshot"
    there = "unknown number of" if t.snapshots is None else str(t.snapshots)
    forget = f", retention forgets {t.forget}" if t.forget else ""
    return f"  [yellow]~[/] {t.target}  {t.location}  take snapshot ({there} there{forget})"


def plan(console: Console, p: Plan) -> None:
    console.print(f"[bold]Plan for policy {p.policy}[/]\n")
    for m in p.mirrors:
        keep = ", ".join(f"{k} {v}" for k, v in m.retention.items()) or "keep everything"
        console.print(f"mirror [bold]{m.mirror}[/] ({m.mode}): {m.source_type} {m.source} "
                      f"{m.source_path}  [dim]retention: {keep}[/]", highlight=False)
        if m.problem:
            console.print(f"  [red]! {m.problem}[/]", highlight=False)
        for t in m.targets:
            console.print(_target_line(t), highlight=False)
    snapshots = sum(len(m.targets) for m in p.mirrors if not m.problem)
    console.print(f"\nPlan: {snapshots} snapshot(s) to take, {p.repositories_to_create} "
                  f"repository(ies) to create, {p.snapshots_to_forget} snapshot(s) to forget.")
    for problem in p.problems:
        console.print(f"[red]problem:[/] {problem}", highlight=False)


def _target_result(mirror: str, t: TargetResult) -> str:
    if not t.ok:
        lag = f" (newest copy there is {t.lag_s / 60:.0f} min old)" if t.lag_s else ""
        return f"[red]✗[/] {mirror} → {t.target}: {t.error}{lag}"
    if t.role == "secondary" and not t.files_new + t.files_changed + t.files_unmodified:
        copied = f"copied ({t.packs_copied} pack(s))"
        return f"[green]✓[/] {mirror} → {t.target}: snapshot {(t.snapshot or '')[:8]} {copied}" + (
            _retention_note(t))
    files = t.files_new + t.files_changed + t.files_unmodified
    line = (f"[green]✓[/] {mirror} → {t.target}: snapshot {(t.snapshot or '')[:8]}, {files} files "
            f"({t.files_new} new, {t.files_changed} changed, {t.files_unmodified} unchanged), "
            f"{size(t.bytes_read)} read, {size(t.bytes_added)} added "
            f"({size(t.bytes_stored)} stored)")
    line += _retention_note(t)
    if t.skipped:
        line += f"; [yellow]{len(t.skipped)} skipped[/]"
    return line


def _retention_note(t: TargetResult) -> str:
    note = f"; retention forgot {len(t.forgotten)}, deleted {t.packs_deleted} pack(s)" if t.forgotten else ""
    if t.kept:
        note += f"; kept {len(t.kept)} under object lock ({t.kept[0]})"
    return note


def apply_result(console: Console, errors: Console, result: ApplyResult) -> None:
    """Outcomes on ``console``; failures (one sentence each) on ``errors``, i.e. stderr."""
    for m in result.mirrors:
        if m.error:
            errors.print(f"[red]✗[/] {m.mirror}: {m.error}", highlight=False)
        for t in m.targets:
            (console if t.ok else errors).print(_target_result(m.mirror, t), highlight=False)
            for skipped in t.skipped:
                errors.print(f"    [yellow]{skipped}[/]", highlight=False)


def snapshots(console: Console, listing: list[TargetSnapshots]) -> None:
    for entry in listing:
        table = Table(title=f"target {entry.target}", title_justify="left")
        for column in ("ID", "Time (UTC)", "Mirror", "Paths", "Files", "Size"):
            table.add_column(column)
        for s in entry.snapshots:
            summary = s.summary or {}
            table.add_row(s.id[:8], to_datetime(s.time_ns).strftime("%Y-%m-%d %H:%M:%S"),
                          s.mirror or "-", ", ".join(s.paths), str(summary.get("files", "-")),
                          size(summary["bytes"]) if "bytes" in summary else "-")
        console.print(table)


def check_report(console: Console, target: str, report: CheckReport, read_data: bool) -> None:
    state = "[green]no damage found[/]" if report.ok else "[red]DAMAGE FOUND[/]"
    read = f", read {report.packs_read} packs ({size(report.bytes_read)})" if read_data else ""
    console.print(f"{target}: {report.snapshots} snapshots, {report.trees} trees, "
                  f"{report.packs} packs{read}: {state}", highlight=False)
    for pack_id, problem in sorted(report.damaged_packs.items()):
        console.print(f"  [red]damaged pack {pack_id}[/]: {problem}", highlight=False)
    for error in report.errors:
        console.print(f"  [red]{error}[/]", highlight=False)
    if report.unreferenced_packs:
        console.print(f"  {len(report.unreferenced_packs)} pack(s) in no index (harmless; "
                      "the next apply adopts them)", highlight=False)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, width in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= width:
            return f"{seconds / width:.1f}{unit}"
    return f"{seconds:.0f}s"


def status(console: Console, report: StatusReport) -> None:
    table = Table(title=f"policy {report.policy}", title_justify="left")
    for column in ("Mirror", "Target", "Role", "Newest snapshot", "Age", "RPO", "Lag", "State"):
        table.add_column(column)
    for m in report.mirrors:
        for t in m.targets:
            state = "[red]BREACH[/]" if t.breach else "[green]ok[/]"
            if t.error:
                state = "[red]unreadable[/]"
            table.add_row(m.mirror, t.target, t.role, (t.snapshot or "-")[:8], _age(t.age_s),
                          _age(m.rpo_s), "-" if t.lag_s is None else _age(t.lag_s), state)
    console.print(table)
    for m in report.mirrors:
        for t in m.targets:
            if t.error:
                console.print(f"[red]{m.mirror} → {t.target}:[/] {t.error}", highlight=False)
    if not report.drills:
        return
    drills = Table(title="drills", title_justify="left")
    for column in ("Drill", "Schedule", "Last run (UTC)", "Result", "RTO", "RTO objective", "RPO", "Checks"):
        drills.add_column(column)
    for d in report.drills:
        when = "never" if d.last_run is None else \
            to_datetime(int(d.last_run * 1e9)).strftime("%Y-%m-%d %H:%M")
        shown = {"passed": "[green]passed[/]", "never": "[yellow]never run[/]"}
        verdict = shown.get(d.verdict, f"[red]{d.verdict.upper()}[/]")
        rto = "-" if d.rto_s is None else _age(d.rto_s)
        if d.rto_met is False:
            rto = f"[red]{rto}[/]"
        drills.add_row(d.drill, d.schedule or "manual", when, verdict, rto,
                       "-" if d.rto_objective_s is None else _age(d.rto_objective_s),
                       "-" if d.rpo_s is None else _age(d.rpo_s),
                       f"{d.checks_passed}/{d.checks}" if d.checks else "-")
    console.print(drills)
    for d in report.drills:
        if d.breach and d.reason:
            console.print(f"[red]drill {d.drill}:[/] {d.reason}", highlight=False)
