"""Runbook commands: ``runbook run/resume/approve``, ``failover``, ``failback``, ``test``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the runbook commands to the main app."""
