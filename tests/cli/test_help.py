"""Every command teaches: ``--help`` works everywhere and a wrong command is a usage error (exit 2)."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from drorch.cli.app import app

runner = CliRunner()


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: Any, prefix: list[str]) -> None:
        # by click's group interface, not isinstance: typer may vendor its own click, and the
        # top-level group builds its commands only when asked (drorch.cli.app.LazyCommands)
        paths.append(prefix)
        if hasattr(command, "list_commands"):
            context = typer.main.get_command(app).make_context("drorch", [], resilient_parsing=True)
            for name in command.list_commands(context):
                walk(command.get_command(context, name), [*prefix, name])

    walk(typer.main.get_command(app), [])
    assert len(paths) >= 30, paths  # every command and subcommand, not only the top level
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "drorch")
def test_help_everywhere(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    if path:
        assert len(result.output.splitlines()) > 4  # a description and options, not just a usage line


def test_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["nonesuch"])
    assert result.exit_code == 2
