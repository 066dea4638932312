"""What every command module shares: consoles, option types, JSON output, error handling."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from drorch.ports.errors import EXIT_FAILED, EXIT_OBJECTIVES_MISSED, DrorchError, Terminated

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
debug = {"on": False}

PolicyArg = Annotated[Path, typer.Argument(help="Policy file (apiVersion: drorch/v1, kind: MirrorPolicy).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
MirrorOpt = Annotated[str | None, typer.Option("--mirror", "-m", help="Only this mirror.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]

F = TypeVar("F", bound=Callable[..., Any])


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def sigterm_unwinds() -> None:
    """Make SIGTERM raise ``Terminated`` in the main thread, like Ctrl-C raises KeyboardInterrupt.

    Python's default for SIGTERM ends the process at once, skipping every ``finally``: a
    retention or restore stopped by systemd or ``kill`` would leave its repository lock
    behind. Unwinding releases locks and runs cleanup; commands with their own stop logic
    (``schedule``, ``drill``, source hooks) install their own handler over this one.
    """
    def handler(signum: int, frame: object) -> None:
        raise Terminated("terminated (SIGTERM)")

    signal.signal(signal.SIGTERM, handler)
def render_report(report: Any, output: str, as_json: bool, text: Callable[[Any], None]) -> None:
    """A status-like report as text, ``json`` or ``prometheus``; exit 3 when it shows a breach."""
    fmt = "json" if as_json else output
    if fmt == "json":
        emit_json(report.to_json())
    elif fmt == "prometheus":
        sys.stdout.write(report.to_prometheus())
    else:
        text(report)
    if report.breach:
        raise typer.Exit(EXIT_OBJECTIVES_MISSED)


def handles_errors(command: F) -> F:
    """Turn expected errors into one sentence and an exit code; unexpected ones too."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except DrorchError as error:
            if debug["on"]:
                err.print_exception()
            err.print(f"[red]error:[/] {escape(str(error))}")  # brackets in it are text, not markup
            raise typer.Exit(error.exit_code) from None
        except Terminated:
            err.print("[red]terminated[/] (SIGTERM); locks were released, nothing half-written is "
                      "visible, the next run resumes")
            raise typer.Exit(128 + signal.SIGTERM) from None
        except KeyboardInterrupt:
            err.print("[red]interrupted[/]; nothing half-written is visible, the next run resumes")
            raise typer.Exit(130) from None
        except Exception as error:  # noqa: BLE001 - the last line of defence for operators
            if debug["on"]:
                err.print_exception()
            err.print(f"[red]internal error:[/] {type(error).__name__}: {error} "
                      "(run again with --debug for the traceback and report it)")
            raise typer.Exit(EXIT_FAILED) from None

    return wrapper  # type: ignore[return-value]


# set by drorch.cli.fleet when a command talked to the engine (Temporal)
engine_used = {"on": False}


def exits_hard(command: F) -> F:
    """``handles_errors``, and the process ends with ``os._exit`` once the engine's SDK ran
    (``engine_used``): for every command that may reach it, fleet commands and the runbook
    commands with a fleet branch.

    The SDK's native runtime keeps threads that may abort the interpreter while
    it finalizes (``PyGILState_Release``), turning a clean exit into SIGABRT;
    output is flushed first, so nothing is lost. Errors are rendered by
    ``handles_errors`` first, so their sentence and exit code survive.
    """

    handled = handles_errors(command)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        code: Any = 0
        try:
            return handled(*args, **kwargs)
        except typer.Exit as done:
            code = done.exit_code
            raise
        except SystemExit as done:
            code = done.code
            raise
        finally:
            if engine_used["on"]:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code if isinstance(code, int) else 1)

    return wrapper  # type: ignore[return-value]
