"""The ``drorch`` command: parse, call the Python API, render for humans or ``--json``.

No logic lives here. Errors reach the operator once, as one sentence on stderr
with the exit code of SPEC §3; the traceback only with ``--debug``.

Commands are loaded lazily (``LazyCommands``): ``drorch apply`` imports and builds
only the module that defines ``apply``, and ``drorch --help`` builds no command at
all, listing them from ``COMMANDS``. Building typer's 26 commands and their
parameters, and importing typer's help formatter (it pulls in ``rich.markdown``,
which drorch never uses), cost ~100 ms of every start (issue 14: ``--help`` and
``validate`` within 150 ms).
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Annotated, Any, NamedTuple

import typer
from typer.core import TyperGroup

from drorch.cli.common import debug, sigterm_unwinds
from drorch.cli.preload import preload
from drorch.gctuning import tune_collector


class CommandEntry(NamedTuple):
    """Where a top-level command is defined, and its line in ``drorch --help``.

    ``modules`` are ``drorch.cli`` modules whose ``register(app)`` adds it, in order
    (``export`` is a group two modules add to). ``summary`` must be the first
    paragraph of the command's own help: ``tests/cli/test_lazy_commands.py`` checks.
    """

    modules: tuple[str, ...]
    summary: str


_MIRRORS = ("mirrors",)
_RUNBOOKS = ("runbooks",)
_DRILLS = ("drills",)
_FLEET = ("fleet",)

COMMANDS: dict[str, CommandEntry] = {
    "validate": CommandEntry(_MIRRORS, "Check a policy file; every problem is listed with file:line, "
                             "key path and the fix."),
    "plan": CommandEntry(_MIRRORS, "Show what `apply` would do (repositories to create, snapshots to "
                         "take and forget) and what each target will store and cost a month, from a "
                         "sample of the source."),
    "apply": CommandEntry(_MIRRORS, "Make every mirror current now: snapshot, dedup, compress, "
                          "encrypt, upload, retention."),
    "snapshots": CommandEntry(_MIRRORS, "List snapshots per target: ID, time, mirror, paths, files "
                              "and size."),
    "restore": CommandEntry(_MIRRORS, "Restore a snapshot's source directory into --to, "
                            "byte-identical, with metadata."),
    "verify": CommandEntry(_MIRRORS, "Check every target's repository; exit 3 naming each damaged "
                           "pack."),
    "status": CommandEntry(_MIRRORS, "RPO compliance per mirror and target: newest snapshot, its age, "
                           "async lag; exit 3 on breach."),
    "failover": CommandEntry(_RUNBOOKS, "Run the policy's failover runbook: bring service up at the "
                             "DR site."),
    "failback": CommandEntry(_RUNBOOKS, "Run the policy's failback runbook: bring the outage's data "
                             "home, then switch back."),
    "test": CommandEntry(_RUNBOOKS, "Run a runbook end to end against emulated clouds; print "
                         "pass/fail per step (JUnit style)."),
    "drill": CommandEntry(_DRILLS, "Rehearse recovery in a sandbox: run the drill's runbook, verify, "
                          "measure RTO/RPO, clean up."),
    "schedule": CommandEntry(_DRILLS, "Run mirrors and drills on their schedules, in the foreground "
                             "(systemd, cron or container)."),
    "standby": CommandEntry(("standby",), "Keep the mirror's standby path equal to its newest "
                            "snapshot, writing only what differs."),
    "ack": CommandEntry(("anomalies",), "Acknowledge an abnormal snapshot after checking it: `status` "
                        "stops reporting it, its changes count as normal from now on, and retention "
                        "may forget the snapshots it held."),
    "agent": CommandEntry(_FLEET, "A worker for HOST: runs its mirrors and the runbook steps that "
                          "name it; heartbeats."),
    "runbook": CommandEntry(_RUNBOOKS, "Run, resume and approve runbooks (failover, failback, "
                            "custom)."),
    "export": CommandEntry(("exports", "images"), "Export what the policy says for other tools "
                           "(Terraform)."),
    "fleet": CommandEntry(_FLEET, "Fleet mode: agents on every host, mirrors and runbooks as engine "
                          "workflows (Temporal)."),
}

HELP = ("Disaster-recovery orchestrator: mirror what a policy protects into encrypted, "
        "deduplicated restic-format repositories, prove the copies restore, bring service back.")
EXIT_CODES = "Exit codes: 0 ok, 1 failed, 2 usage or invalid policy, 3 ran but objectives missed."

# built commands, by the modules that define them: each module registers once per process
# (``images`` adds to the ``export`` group that ``exports`` owns)
_built: dict[tuple[str, ...], dict[str, Any]] = {}


def build_commands(modules: tuple[str, ...]) -> dict[str, Any]:
    """The click commands that ``modules`` register, by name (built once per process)."""
    if modules not in _built:
        app = typer.Typer()
        for module in modules:
            import_module(f"drorch.cli.{module}").register(app)
        _built[modules] = dict(typer.main.get_group(app).commands)
    return _built[modules]


class LazyCommands(TyperGroup):
    """The top-level group: a command is imported and built when it is named."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = COMMANDS.get(cmd_name)
        return None if entry is None else build_commands(entry.modules).get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from drorch.cli.tophelp import render_top_help

        render_top_help(ctx, HELP, {name: e.summary for name, e in COMMANDS.items()}, EXIT_CODES)


app = typer.Typer(
    name="drorch",
    cls=LazyCommands,
    help=HELP,
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


def main() -> None:
    tune_collector()
    sigterm_unwinds()
    preload(sys.argv[1:])  # before typer parses: the key of a policy's repository starts deriving
    app()
