"""Every command teaches: ``--help`` works everywhere and a wrong command is a usage error (exit 2)."""

from __future__ import annotations

import click
import pytest
import typer.main
from typer.testing import CliRunner

from drorch.cli.app import app

runner = CliRunner()


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: click.Command, prefix: list[str]) -> None:
        paths.append(prefix)
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
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
