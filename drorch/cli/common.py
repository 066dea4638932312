"""What every command module shares: consoles, option types, JSON output, error handling."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from drorch.ports.errors import EXIT_FAILED, DrorchError

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
            err.print(f"[red]error:[/] {error}")
            raise typer.Exit(error.exit_code) from None
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
