"""Drill results kept in the state database, as ``DrillResult`` values.

The storage is ``state.drills.DrillDocuments`` (one JSON document per drill
run); this class adds the typed view the drill runner, reports and the CLI use.
"""

from __future__ import annotations

from drorch.drill.result import DrillResult
from drorch.state.drills import DrillDocuments

__all__ = ["DrillHistory"]


class DrillHistory(DrillDocuments):
    def record(self, result: DrillResult, *, running: bool = False) -> None:
        self.record_document(result.to_json(), running=running)

    def recent(self, policy: str, drill: str | None = None, limit: int = 10) -> list[DrillResult]:
        """Finished drills of ``policy`` (one drill, or all), newest first."""
        return [DrillResult.from_json(doc) for doc in self.recent_documents(policy, drill, limit)]

    def latest(self, policy: str) -> dict[str, DrillResult]:
        """The newest finished result of each drill of ``policy``."""
        return {name: DrillResult.from_json(doc) for name, doc in self.latest_documents(policy).items()}
