"""``standby:`` on a mirror (SPEC §8): a live, exact copy of its newest snapshot.

    mirrors:
      - name: web
        ...
        standby: {host: dr1, path: /srv/www, follow: continuous}

``follow`` says when the copy moves: ``continuous`` (each new snapshot as it
lands at the mirror's first target), a five-field cron (catch up on each slot)
or ``manual`` (only when asked: ``drorch standby --once``, ``promote``).
``host`` is a plain name; it must be one of the policy's ``hosts:`` when the
policy lists hosts (fleet mode), and means "the machine that runs the
follower" otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationInfo, field_validator

from drorch.policy.fields import Follow, Name, StrictModel, resolve_given_path

__all__ = ["Standby"]


class Standby(StrictModel):
    """Where and when a mirror's newest snapshot is kept applied as a live directory."""

    host: Name | None = None
    path: Path
    # continuous: the copy trails the source by seconds, which is what a standby is for;
    # manual never moves it behind the operator's back.
    follow: Follow = "continuous"

    @field_validator("path", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        return resolve_given_path(value, info, "the directory the standby copy lives in")

    @property
    def follows_continuously(self) -> bool:
        return self.follow == "continuous"

    @property
    def cron(self) -> str | None:
        """The follow schedule when it is a cron expression, else None."""
        return None if self.follow in ("continuous", "manual") else self.follow
