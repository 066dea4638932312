"""Runbooks (SPEC §5): typed steps that bring service back, journalled and undoable.

    load_runbook(path, policy=None)      parse and validate a ``kind: Runbook`` file
    run_runbook(path, ...)               start a run; returns a ``RunResult``
    resume_run(run_id, ...)              continue a crashed or stopped run
    approve_run(run_id, step=None)       issue a one-time token for an ``approve`` gate
    plan_runbook(path, policy, vars)     the resolved plan, nothing touched
    preflight_runbook(path, policy, vars) ``--dry-run``: the plan, and per step whether what it
                                         needs exists now (data, credentials, zone, image...)
    show_run(run_id) / list_runs()       the journal's record of runs

Modules: ``model`` (the file), ``checks`` (references), ``templating``,
``steps/`` (one module per action), ``attempts`` (deadline, retries),
``engine`` (order, journal, undo), ``journal`` (SQLite), ``results`` (RTO),
``protocols`` / ``backends`` (providers), ``testing`` (``drorch test``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drorch import lazy

if TYPE_CHECKING:
    from drorch.runbook.engine import Engine, RunOptions
    from drorch.runbook.journal import Journal
    from drorch.runbook.model import Runbook, Step, StepBody, load_runbook
    from drorch.runbook.plan import RunPlan
    from drorch.runbook.results import RunResult, StepResult
    from drorch.runbook.runner import (
        approve_run,
        discover_policy,
        list_runs,
        parse_vars,
        plan_runbook,
        preflight_runbook,
        resume_run,
        run_runbook,
        show_run,
    )

# Imported on first use, not here: see drorch.lazy.
__getattr__ = lazy.exports(__name__, {
    "drorch.runbook.engine": ("Engine", "RunOptions"),
    "drorch.runbook.journal": ("Journal",),
    "drorch.runbook.model": ("Runbook", "Step", "StepBody", "load_runbook"),
    "drorch.runbook.plan": ("RunPlan",),
    "drorch.runbook.results": ("RunResult", "StepResult"),
    "drorch.runbook.runner": ("approve_run", "discover_policy", "list_runs", "parse_vars", "plan_runbook",
                              "preflight_runbook", "resume_run", "run_runbook", "show_run"),
})

__all__ = [
    "Engine",
    "Journal",
    "RunOptions",
    "RunPlan",
    "RunResult",
    "Runbook",
    "Step",
    "StepBody",
    "StepResult",
    "approve_run",
    "discover_policy",
    "list_runs",
    "load_runbook",
    "parse_vars",
    "plan_runbook",
    "preflight_runbook",
    "resume_run",
    "run_runbook",
    "show_run",
]
