"""Drills (SPEC §2 ``drills:``): rehearse recovery in a sandbox on a schedule, and prove it.

    run_drill(policy_path, name, options=...)   run one drill; returns a ``DrillResult``
    DrillHistory()                              past results in the state database
    write_report(result, path, history)         .html / .xml (JUnit) / .json by extension

Modules: ``runner`` (the flow), ``sandbox`` (confining the runbook; the cloud
side is the ``ports.sandbox`` port, on AWS ``providers/aws_sandbox``), ``cleanup``,
``checks`` (verify), ``checksum`` (restored files vs snapshot), ``templates``
(strict verify templates), ``result``, ``history`` (typed view of
``state.drills``), ``report_html`` / ``timeline`` / ``report_junit`` / ``reports``.
``--mock aws`` lives in ``drorch.testing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drorch import lazy

if TYPE_CHECKING:
    from drorch.drill.history import DrillHistory
    from drorch.drill.reports import write_report
    from drorch.drill.result import CheckResult, DrillResult, Phase, SnapshotUsed
    from drorch.drill.runner import DrillBusy, DrillInterrupted, DrillOptions, run_drill, select_drill

# Imported on first use, not here: see drorch.lazy.
__getattr__ = lazy.exports(__name__, {
    "drorch.drill.history": ("DrillHistory",),
    "drorch.drill.reports": ("write_report",),
    "drorch.drill.result": ("CheckResult", "DrillResult", "Phase", "SnapshotUsed"),
    "drorch.drill.runner": ("DrillBusy", "DrillInterrupted", "DrillOptions", "run_drill", "select_drill"),
})

__all__ = [
    "CheckResult",
    "DrillBusy",
    "DrillHistory",
    "DrillInterrupted",
    "DrillOptions",
    "DrillResult",
    "Phase",
    "SnapshotUsed",
    "run_drill",
    "select_drill",
    "write_report",
]
