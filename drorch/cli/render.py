"""Human views of plans and results; the JSON views are the objects' ``to_json``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

from drorch.repository.timefmt import to_datetime

if TYPE_CHECKING:  # annotations only: `drorch apply` need not import status, operations, check
    from rich.table import Table

    from drorch.cost.forecast import TargetForecast
    from drorch.cost.sample import SourceEstimate
    from drorch.engine.apply import ApplyResult, TargetResult
    from drorch.engine.operations import TargetSnapshots
    from drorch.engine.plan import Plan, TargetPlan
    from drorch.engine.standby_status import StandbyStatus
    from drorch.engine.status import StatusReport
    from drorch.repository.check import CheckReport


def _table(title: str) -> Table:
    """A table with its title on the left (rich.table is imported by the commands that print one)."""
    from rich.table import Table

    return Table(title=title, title_justify="left")


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


def _estimate_line(e: SourceEstimate) -> str:
    how = "read whole" if e.exact else f"sampled {size(e.sampled_bytes)}"
    dup = f", {size(e.duplicate_bytes)} duplicate" if e.duplicate_bytes else ""
    return (f"source: {e.files} files, {size(e.source_bytes)}{dup}; one full copy stores "
            f"~{size(e.stored_bytes)} ({e.ratio:.0%}; {how} in {e.seconds:.1f}s)")


def _money(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:.4f}" if 0 < value < 0.01 else f"${value:,.2f}"


def _forecast_line(f: TargetForecast) -> str:
    kept = "everything" if f.retained_days is None else f"{f.retained_days:g} days"
    daily = "" if f.daily_change_bytes is None else f", +{size(f.daily_change_bytes)}/day"
    line = (f"cost: ~{size(f.forecast_bytes)} stored (retention keeps {kept}{daily}), "
            f"{_money(f.monthly_cost)}/month ({f.storage_class or 'no class'}, {f.price_source}), "
            f"full restore egress {_money(f.restore_egress_cost)}")
    return line + (f" [dim]— {f.note}[/]" if f.note else "")


def plan(console: Console, p: Plan) -> None:
    console.print(f"[bold]Plan for policy {p.policy}[/]\n")
    for m in p.mirrors:
        keep = ", ".join(f"{k} {v}" for k, v in m.retention.items()) or "keep everything"
        console.print(f"mirror [bold]{m.mirror}[/] ({m.mode}): {m.source_type} {m.source} "
                      f"{m.source_path}  [dim]retention: {keep}[/]", highlight=False)
        if m.problem:
            console.print(f"  [red]! {m.problem}[/]", highlight=False)
        if m.estimate is not None:
            console.print(f"  [dim]{_estimate_line(m.estimate)}[/]", highlight=False)
        for note in m.notes:
            console.print(f"  [yellow]note:[/] {note}", highlight=False)
        for t in m.targets:
            console.print(_target_line(t), highlight=False)
            if t.forecast is not None:
                console.print(f"      {_forecast_line(t.forecast)}", highlight=False)
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
        caught_up = f", caught up {t.snapshots_caught_up} missed snapshot(s)" if t.snapshots_caught_up else ""
        copied = f"copied ({t.packs_copied} pack(s){caught_up})"
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
    if t.anomaly:
        line += f"; [red]ABNORMAL: {'; '.join(t.anomaly)}[/]"
    return line


def _retention_note(t: TargetResult) -> str:
    note = f"; retention forgot {len(t.forgotten)}, deleted {t.packs_deleted} pack(s)" if t.forgotten else ""
    if t.kept:
        note += f"; kept {len(t.kept)} ({t.kept[0]})"
    return note


def apply_result(console: Console, errors: Console, result: ApplyResult) -> None:
    """Outcomes on ``console``; failures (one sentence each) on ``errors``, i.e. stderr."""
    for m in result.mirrors:
        for note in m.notes:
            console.print(f"[yellow]note:[/] {m.mirror}: {note}", highlight=False)
        if m.error:
            errors.print(f"[red]✗[/] {m.mirror}: {m.error}", highlight=False)
        for t in m.targets:
            (console if t.ok else errors).print(_target_result(m.mirror, t), highlight=False)
            for skipped in t.skipped:
                errors.print(f"    [yellow]{skipped}[/]", highlight=False)


def snapshots(console: Console, listing: list[TargetSnapshots]) -> None:
    for entry in listing:
        table = _table(f"target {entry.target}")
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
    table = _table(f"policy {report.policy}")
    for column in ("Mirror", "Target", "Role", "Newest snapshot", "Age", "RPO", "Lag", "State"):
        table.add_column(column)
    for m in report.mirrors:
        for t in m.targets:
            state = "[red]BREACH[/]" if t.breach else "[green]ok[/]"
            if t.uncaptured_s is not None and not t.breach:
                state = f"[green]ok[/] (unchanged, checked {_age(t.uncaptured_s)} ago)"
            if t.error:
                state = "[red]unreadable[/]"
            table.add_row(m.mirror, t.target, t.role, (t.snapshot or "-")[:8], _age(t.age_s),
                          _age(m.rpo_s), "-" if t.lag_s is None else _age(t.lag_s), state)
    console.print(table)
    for m in report.mirrors:
        for t in m.targets:
            if t.error:
                console.print(f"[red]{m.mirror} → {t.target}:[/] {t.error}", highlight=False)
        for flag in m.anomalies:
            console.print(f"[red]ABNORMAL[/] {flag.describe()}; older snapshots are kept until "
                          f"`drorch ack POLICY {flag.snapshot[:8]}`", highlight=False)
    for m in report.mirrors:
        if m.standby is not None:
            _standby(console, m.mirror, m.standby)
    if not report.drills:
        return
    drills = _table("drills")
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


def _standby(console: Console, mirror: str, s: StandbyStatus) -> None:
    where = f"{s.host}:{s.path}" if s.host else s.path
    if s.snapshot is None:
        console.print(f"standby {mirror} at {where} ({s.follow}): [yellow]never synced[/]", highlight=False)
        return
    state = "[yellow]promoted, serving[/]" if s.promoted else \
        "[red]BREACH[/]" if s.breach else "[green]ok[/]"
    lag = "-" if s.lag_s is None else _age(s.lag_s)
    data = "-" if s.data_lag_s is None else _age(s.data_lag_s)
    console.print(f"standby {mirror} at {where} ({s.follow}): holds {s.snapshot[:8]}, "
                  f"standby lag {lag}, data lag {data}: {state}", highlight=False)
