"""Recovery objectives (RTO, RPO): one rule for whether a measurement meets its objective.

Used by runbook results, drill results and status alike, so "met" means the
same everywhere: ``None`` when either side is unknown (nothing was measured,
or no objective was set) — never a silent pass — else measured ≤ objective.
"""

from __future__ import annotations


def met(measured_s: float | None, objective_s: float | None) -> bool | None:
    if measured_s is None or objective_s is None:
        return None
    return measured_s <= objective_s
