"""Drill and scheduler commands: ``drill``, ``schedule``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the drill and scheduler commands to the main app."""
