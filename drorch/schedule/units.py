"""``drorch schedule --export systemd|cron``: the same schedule for the OS scheduler.

Each cron job becomes a oneshot service plus a timer (systemd) or one crontab
line, running ``drorch apply --mirror`` or ``drorch drill --name``; a
continuous mirror needs a long-running watcher, so it becomes a service
running ``drorch schedule POLICY --job mirror:NAME``. The repository key is
never written into units: they read ``/etc/drorch/drorch.env``
(``DRORCH_KEY=...``, mode 0600), and crontab lines read ``$DRORCH_KEY`` from
cron's environment.

Cron and systemd differ in one respect: when both day-of-month and
day-of-week are restricted, cron runs on either, systemd on both; such
expressions are exported with a comment saying so.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

from drorch.policy import Policy
from drorch.ports.errors import UsageError
from drorch.schedule.jobs import Job, jobs_for

__all__ = ["cron_to_oncalendar", "export_cron", "export_systemd"]

_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def _drorch() -> str:
    return shutil.which("drorch") or f"{sys.executable} -m drorch"


def _field(value: str, low: int, names: list[str] | None = None) -> str:
    """One cron field in systemd calendar syntax: ``*/15`` → ``0/15``, ``1-5`` → ``1..5``."""
    out = []
    for part in value.split(","):
        if names:
            part = re.sub(r"[a-z]{3}", lambda m: str(names.index(m.group(0)) + 1), part.lower())
        base, _, step = part.partition("/")
        if base == "*":
            base = f"{low:02d}" if step else "*"
        elif "-" in base:
            start, end = base.split("-")
            base = f"{start}..{end}"
        elif base.isdigit():
            base = f"{int(base):02d}"
        out.append(f"{base}/{step}" if step else base)
    return ",".join(out)


def _weekdays(value: str) -> str:
    if value == "*":
        return ""
    days = []
    for part in value.lower().split(","):
        for index, name in enumerate(_DAYS[:7]):
            part = part.replace(name.lower(), str(index))
        if "/" in part:
            raise UsageError(f"day-of-week step '{part}' has no systemd equivalent",
                             hint="list the days instead, e.g. 1,3,5")
        if "-" in part:
            start, end = (int(x) for x in part.split("-"))
            days.append(f"{_DAYS[start]}..{_DAYS[end]}")
        else:
            days.append(_DAYS[int(part)])
    return ",".join(days) + " "


def cron_to_oncalendar(expression: str) -> tuple[str, str | None]:
    """(OnCalendar value, warning or None) for a five-field cron expression or macro."""
    expression = _MACROS.get(expression.strip(), expression)
    minute, hour, dom, month, dow = expression.split()
    when = (f"{_weekdays(dow)}*-{_field(month, 1, _MONTHS)}-{_field(dom, 1)} "  # month names: jan=1
            f"{_field(hour, 0)}:{_field(minute, 0)}:00")
    warning = None
    if dom != "*" and dow != "*":
        warning = "cron runs when either day-of-month or day-of-week matches; systemd needs both"
    return when, warning


def _command(policy_path: Path, job: Job) -> str:
    policy = shlex.quote(str(policy_path.absolute()))
    if job.cron is None:
        return f"{_drorch()} schedule {policy} --job {job.key}"
    if job.kind == "mirror":
        return f"{_drorch()} apply {policy} --mirror {shlex.quote(job.name)} --yes --quiet"
    return f"{_drorch()} drill {policy} --name {shlex.quote(job.name)} --quiet"


def export_systemd(policy: Policy, policy_path: Path) -> str:
    name = policy.metadata.name
    out = [f"# systemd units for drorch policy {name}: save each block under /etc/systemd/system/,",
           "# put DRORCH_KEY=... in /etc/drorch/drorch.env (mode 0600), then",
           "# systemctl daemon-reload && systemctl enable --now <each .timer and watcher .service>", ""]
    for job in jobs_for(policy):
        unit = f"drorch-{name}-{job.kind}-{job.name}"
        continuous = job.cron is None
        out += [f"### {unit}.service", "[Unit]", f"Description=drorch {name}: {job.kind} {job.name}",
                "After=network-online.target", "Wants=network-online.target", "", "[Service]",
                f"Type={'simple' if continuous else 'oneshot'}", "EnvironmentFile=/etc/drorch/drorch.env",
                f"ExecStart={_command(policy_path, job)}",
                # SIGTERM lets a drill clean up its sandbox and an apply stop safely.
                "KillSignal=SIGTERM", "TimeoutStopSec=10min"]
        if continuous:
            out += ["Restart=on-failure", "RestartSec=30s", "", "[Install]", "WantedBy=multi-user.target", ""]
            continue
        when, warning = cron_to_oncalendar(job.cron or "")
        out += ["", f"### {unit}.timer", "[Unit]", f"Description=drorch {name}: {job.kind} {job.name} "
                f"on '{job.cron}'", "", "[Timer]", f"OnCalendar={when}",
                *([f"# note: {warning}"] if warning else []),
                # Persistent: a run missed while the host was off runs once at boot, like the scheduler.
                "Persistent=true", "", "[Install]", "WantedBy=timers.target", ""]
    if len(out) == 4:
        out.append(f"# policy {name} schedules nothing (no mirror or drill has a schedule)")
    return "\n".join(out) + "\n"


def export_cron(policy: Policy, policy_path: Path) -> str:
    name = policy.metadata.name
    out = [f"# crontab lines for drorch policy {name}; cron must provide DRORCH_KEY (and DRORCH_HOME)",
           "# flock -n: a run still going is not started twice"]
    lock_dir = "/tmp"
    for job in jobs_for(policy):
        if job.cron is None:
            out.append(f"# {job.key} is continuous: cron cannot run it; run `{_command(policy_path, job)}` "
                       "as a service")
            continue
        lock = f"{lock_dir}/drorch-{name}-{job.kind}-{job.name}.lock"
        out.append(f"{job.cron} flock -n {shlex.quote(lock)} {_command(policy_path, job)}")
    return "\n".join(out) + "\n"
