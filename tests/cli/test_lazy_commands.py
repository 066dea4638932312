"""The top-level group loads a command only when it is named (``drorch.cli.app.LazyCommands``).

``drorch --help`` lists the commands from ``COMMANDS`` without building them, so the
table must stay true to the commands themselves: every registered command is in it,
under the module that registers it, with the first paragraph of its own help.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import typer
import typer.main
from typer.testing import CliRunner

from drorch.cli.app import COMMANDS, app, build_commands

CLI_MODULES = ("mirrors", "runbooks", "drills", "standby", "exports", "images", "anomalies", "fleet")


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").split("\n\n")[0].split())


def test_table_names_every_registered_command_in_order() -> None:
    everything = typer.Typer()
    for module in CLI_MODULES:
        import_module(f"drorch.cli.{module}").register(everything)
    registered = list(typer.main.get_group(everything).commands)
    assert sorted(registered) == sorted(COMMANDS)
    context = typer.main.get_command(app).make_context("drorch", [], resilient_parsing=True)
    assert typer.main.get_command(app).list_commands(context) == list(COMMANDS)


def test_each_summary_is_the_first_paragraph_of_the_commands_own_help() -> None:
    for name, entry in COMMANDS.items():
        command = build_commands(entry.modules)[name]
        assert entry.summary == _first_paragraph(command.help), name


def test_top_help_lists_every_command_with_its_summary() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    assert result.exit_code == 0, result.output
    for name, entry in COMMANDS.items():
        assert f"{name} " in result.output and entry.summary in result.output, name
    assert "--debug" in result.output and "Exit codes: 0 ok" in result.output


def _modules_after(*argv: str) -> set[str]:
    """The modules a fresh ``drorch ARGV`` process has imported when it exits."""
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: sys.__stderr__.write('\\nMODULES ' + ' '.join(sys.modules)))\n"
             f"sys.argv = ['drorch', *{list(argv)!r}]\n"
             "from drorch.cli.app import main\n"
             "main()\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    return set(done.stderr.rsplit("MODULES ", 1)[1].split())


def test_help_builds_no_command_and_imports_no_engine() -> None:
    loaded = _modules_after("--help")
    assert not {m for m in loaded if m.startswith(("drorch.cli.", "pydantic", "rich.markdown"))} \
        - {"drorch.cli.app", "drorch.cli.common", "drorch.cli.preload", "drorch.cli.tophelp"}


def test_a_command_loads_only_its_own_module(tmp_path) -> None:
    loaded = _modules_after("validate", str(tmp_path / "missing.yaml"))
    assert "drorch.cli.mirrors" in loaded
    assert not loaded & {f"drorch.cli.{m}" for m in CLI_MODULES if m != "mirrors"}

