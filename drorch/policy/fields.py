"""Value types shared by the policy sections: names, durations, cron, argv, paths.

Each type validates and explains itself once, so ``rpo: 15x`` and
``timeout: 15x`` fail with the same sentence, and so the section models in
``model.py`` read as a list of fields.

Relative paths are resolved against ``base_dir`` from the validation context
(``validate_document`` sets it to the policy file's directory); a policy
validated without that context resolves them against the current directory.
Absolute paths are kept exactly as written.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, ValidationInfo

from drorch.policy.document import absolute_path
from drorch.policy.durations import MAX_DURATION, format_duration, parse_duration
from drorch.policy.validation import reject

__all__ = [
    "Argv",
    "Cron",
    "Duration",
    "Follow",
    "Name",
    "Seconds",
    "NonEmpty",
    "Schedule",
    "StrictModel",
    "base_dir",
    "resolve_given_path",
    "resolve_path",
]


class StrictModel(BaseModel):
    """Base of every policy section: frozen, closed to unknown keys.

    Unknown keys are errors because a misspelt key (``retension``) would otherwise
    be ignored and its protection silently lost. Python callers may use field
    names (``from_``) as well as the YAML aliases (``from``). Input values are
    kept out of ``str(ValidationError)``: a refused value may be a secret.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, hide_input_in_errors=True, defer_build=True
    )


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_ARGV_EXAMPLE = '["/usr/bin/db-flush", "--all"]'


def _name(value: Any) -> Any:
    """Names appear in CLI flags, snapshot tags and ``{{ outputs.NAME.KEY }}``: keep them plain."""
    if isinstance(value, str) and not _NAME.fullmatch(value):
        reject(
            f"invalid name '{value}'; use letters, digits, '.', '_' and '-' "
            "(at most 63, starting with a letter or digit)"
        )
    return value


def _duration(value: Any) -> timedelta:
    """Accept the ``15m`` grammar (or a ``timedelta`` from Python); zero is refused.

    A zero RPO, RTO or timeout can never be met, so it is a typo, not a choice.
    """
    if isinstance(value, timedelta):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = parse_duration(value)
        except ValueError as exc:
            reject(str(exc))
    else:
        reject(f"invalid duration '{value}'; use a number with s, m, h, d or w, e.g. 15m")
    if parsed <= timedelta(0):
        reject(f"duration must be longer than 0s, got '{value}'")
    return parsed


def _seconds(value: Any) -> timedelta:
    """A duration that may be shorter than a second: a number of seconds (``0.5``) or ``15m``."""
    if isinstance(value, bool):
        reject(f"invalid duration '{value}'; give seconds (0.5) or a duration (2s, 1m)")
    if isinstance(value, int | float):
        if not 0 < value <= MAX_DURATION.total_seconds():
            reject(f"duration must be longer than 0s and at most 100 years, got {value}")
        return timedelta(seconds=value)
    return _duration(value)


def _cron(value: Any, *, alternative: str = "") -> Any:
    """Five-field cron (minute hour day-of-month month day-of-week) or an ``@daily``-style macro.

    croniter also accepts a sixth "seconds" field; that is refused so that every
    expression means what ``crontab(5)`` says it means.
    """
    if not isinstance(value, str):
        return value  # the str type check reports it
    from croniter import croniter  # 0.1 s to import; only policies with a schedule pay it

    fields = value.split()
    if not croniter.is_valid(value) or not (len(fields) == 5 or value.startswith("@")):
        reject(
            f"invalid cron expression '{value}'; use five fields "
            '(minute hour day-of-month month day-of-week), e.g. "*/15 * * * *"' + alternative
        )
    if not _fires(value):
        reject(f"cron expression '{value}' never fires (no such date, e.g. 31 February); "
               "fix the day-of-month or the month")
    return value


def _fires(expression: str) -> bool:
    """Whether ``expression`` names a time that exists; croniter gives up on impossible dates."""
    from croniter import CroniterBadDateError, croniter

    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except (CroniterBadDateError, ValueError, OverflowError):
        return False
    return True


def _schedule(value: Any) -> Any:
    """A cron expression, or ``continuous``: replicate on file events instead of a clock."""
    if value == "continuous":
        return value
    return _cron(value, alternative=", or continuous")


def _follow(value: Any) -> Any:
    """How a standby follows its mirror: ``continuous``, ``manual`` or a cron expression."""
    if value in ("continuous", "manual"):
        return value
    return _cron(value, alternative=", continuous or manual")


def _argv(value: Any, info: ValidationInfo) -> Any:
    """Commands are argv lists so no shell ever parses a policy value."""
    field = info.field_name or "command"
    if isinstance(value, str):
        reject(f"{field} must be an argv list such as {_ARGV_EXAMPLE}, never a shell string")
    if isinstance(value, list | tuple) and not value:
        reject(f"{field} must not be empty; give a command such as {_ARGV_EXAMPLE} or remove it")
    return value


def _non_empty(value: Any) -> Any:
    """Checked on the input, so one bad item is not also reported as "empty" (as min_length is)."""
    if isinstance(value, list | tuple) and not value:
        reject("must not be empty")
    return value


NonEmpty = BeforeValidator(_non_empty)
"""Marker for ``Annotated[tuple[X, ...], NonEmpty]``: the list needs at least one item."""

Name = Annotated[str, BeforeValidator(_name)]
"""A section-unique name: letters, digits, ``.``, ``_``, ``-``; at most 63 characters."""

Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A positive duration written ``30s``, ``15m``, ``2h30m``, ``7d``, ``1w``; JSON renders it back."""

Seconds = Annotated[
    timedelta,
    BeforeValidator(_seconds),
    PlainSerializer(lambda d: d.total_seconds(), return_type=float, when_used="json"),
]
"""A positive duration given as seconds (``0.5``, for sub-second settings) or like ``Duration``."""

Cron = Annotated[str, BeforeValidator(_cron)]
"""A five-field cron expression or macro, checked with croniter."""

Schedule = Annotated[str, BeforeValidator(_schedule)]
"""A mirror schedule: a cron expression or ``continuous``."""

Follow = Annotated[str, BeforeValidator(_follow)]
"""A standby's ``follow``: ``continuous``, ``manual`` or a cron expression."""

Argv = Annotated[tuple[str, ...], BeforeValidator(_argv)]
"""A non-empty argv list, run without a shell."""


def base_dir(info: ValidationInfo) -> Path:
    """The directory relative paths start from: the policy file's, else the current one."""
    context = info.context or {}
    return Path(context.get("base_dir") or Path.cwd())


def resolve_path(raw: str, info: ValidationInfo) -> Path:
    """``raw`` as an absolute path, relative ones joined to ``base_dir`` (``absolute_path``)."""
    return absolute_path(raw, base_dir(info))



def resolve_given_path(value: Any, info: ValidationInfo, what: str) -> Any:
    """A ``before`` validator body: a non-empty string made absolute by ``resolve_path``;
    ``what`` completes "must not be empty; give ...". Other types are left to field validation."""
    if isinstance(value, str):
        if not value.strip():
            reject(f"must not be empty; give {what}")
        return resolve_path(value, info)
    return value
