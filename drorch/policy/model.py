"""The policy file (SPEC §2) as frozen pydantic models.

A ``Policy`` that exists is valid: every name it refers to exists, no secret is
written in it, every duration, cron expression and URL parses, and every path
is absolute. Relative paths (source ``path``, ``file://relative/dir`` target
URLs, ``file:`` keys, runbook files) are resolved against the directory of the
policy file, so ``drorch apply policies/quickstart.yaml`` means the same thing
from any working directory.

Models forbid unknown keys (a misspelt ``retension`` must not silently keep
every snapshot forever) and are immutable, so the planner can share them.
Lookups by name (``policy.mirror("web")``) raise ``UsageError`` naming the
known names, because the name usually comes from a ``--mirror`` flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TypeVar

from pydantic import (
    BeforeValidator,
    Field,
    ModelWrapValidatorHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)

from drorch.policy.checks import policy_problems
from drorch.policy.fields import (
    Argv,
    Duration,
    Name,
    NonEmpty,
    Schedule,
    StrictModel,
    resolve_path,
)
from drorch.policy.recovery import Check, Drill, Instance, Recovery
from drorch.policy.targets import Encryption, Target
from drorch.policy.validation import raise_problems, reject, validate_together
from drorch.ports.errors import UsageError

__all__ = [
    "API_VERSION",
    "Check",
    "Consistency",
    "Drill",
    "Encryption",
    "Instance",
    "Metadata",
    "Mirror",
    "Policy",
    "Recovery",
    "Retention",
    "Source",
    "Target",
]

API_VERSION = "drorch/v1"
KIND = "MirrorPolicy"


# -------------------------------------------------------------------------- sources


class Consistency(StrictModel):
    """How to quiesce a source around its snapshot."""

    # "none" reads files as they are: never touches the host, and the hooks below can
    # still flush a database; choose lvm/zfs/btrfs for a point-in-time copy of live data.
    snapshot: Literal["none", "lvm", "zfs", "btrfs", "command"] = "none"
    pre: Argv | None = None
    post: Argv | None = None
    # Bounded so a hung hook cannot keep a database frozen or block every later
    # snapshot; 5m covers typical flush/freeze commands.
    timeout: Duration = Field(default_factory=lambda: timedelta(minutes=5))


class Source(StrictModel):
    """What to protect. ``path`` is absolute after validation (see module docstring)."""

    name: Name
    type: Literal["directory", "image", "volume"]
    path: Path
    # Nothing excluded by default: an unlisted file is protected, never silently skipped.
    exclude: tuple[str, ...] = ()
    # No snapshot and no hooks unless asked: drorch never freezes or snapshots a host's
    # volumes on its own initiative.
    consistency: Consistency = Field(default_factory=lambda: Consistency())

    @field_validator("path", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            if not value.strip():
                reject("must not be empty; give the path to protect")
            return resolve_path(value, info)
        return value


# -------------------------------------------------------------------------- mirrors


class Retention(StrictModel):
    """How many snapshots to keep per period (restic ``forget --keep-*``).

    Absent and zero counts mean "no rule". With no rule at all, nothing is ever
    deleted: an empty or missing retention keeps every snapshot.
    """

    last: int | None = Field(default=None, ge=0)
    hourly: int | None = Field(default=None, ge=0)
    daily: int | None = Field(default=None, ge=0)
    weekly: int | None = Field(default=None, ge=0)
    monthly: int | None = Field(default=None, ge=0)
    yearly: int | None = Field(default=None, ge=0)

    @property
    def keeps_everything(self) -> bool:
        """True when no rule is set, so retention must delete nothing."""
        return not any(self.model_dump().values())


class Mirror(StrictModel):
    """One source copied to one or more targets, kept within ``rpo``."""

    name: Name
    source: Name
    targets: Annotated[tuple[Name, ...], NonEmpty]
    # sync: a snapshot counts only when every target committed it, the safer reading.
    mode: Literal["sync", "async"] = "sync"
    # None: manual only (`drorch apply`); nothing runs unexpectedly, and `status` still
    # flags the RPO breach, so a forgotten schedule is reported rather than silent.
    schedule: Schedule | None = None
    rpo: Duration
    # Empty: keep every snapshot. Deleting is opted into, never a default.
    retention: Retention = Field(default_factory=lambda: Retention())

    @field_validator("retention", mode="before")
    @classmethod
    def _none_keeps_everything(cls, value: Any) -> Any:
        return {} if value is None else value


# --------------------------------------------------------------------------- policy


class Metadata(StrictModel):
    name: Name
    description: str | None = None


def _runbook_file(raw: Any, info: ValidationInfo) -> Any:
    """Runbook paths are relative to the policy file; the file must exist now, not on the day."""
    if not isinstance(raw, str):
        return raw
    path = resolve_path(raw, info)
    if not path.is_file():
        reject(
            f"runbook file '{raw}' does not exist (looked for {path}); create it or fix the path"
        )
    return path


RunbookFile = Annotated[Path, BeforeValidator(_runbook_file)]
"""An existing runbook file, absolute after validation."""


class Policy(StrictModel):
    """A whole ``kind: MirrorPolicy`` document. See the module docstring for guarantees."""

    api_version: Literal["drorch/v1"] = Field(alias="apiVersion")
    kind: Literal["MirrorPolicy"]
    metadata: Metadata
    encryption: Encryption
    sources: Annotated[tuple[Source, ...], NonEmpty]
    targets: Annotated[tuple[Target, ...], NonEmpty]
    mirrors: Annotated[tuple[Mirror, ...], NonEmpty]
    # Optional: a policy may only replicate. Nothing is protected less by leaving them
    # out, and `drorch status` shows when no drill has ever run.
    recovery: tuple[Recovery, ...] = ()
    runbooks: dict[Name, RunbookFile] = Field(default_factory=dict)
    drills: tuple[Drill, ...] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _whole_policy(
        cls, data: Any, handler: ModelWrapValidatorHandler[Policy], info: ValidationInfo
    ) -> Policy:
        kind = data.get("kind") if isinstance(data, Mapping) else None
        if isinstance(kind, str) and kind != KIND:
            message = f"invalid value '{kind}'; use '{KIND}' (this is not a mirror policy file)"
            raise_problems([(("kind",), message)], cls.__name__)
        problems = policy_problems(data, info.context)
        return validate_together(data, handler, problems, cls.__name__)

    def source(self, name: str) -> Source:
        """The source called ``name``; ``UsageError`` listing known sources otherwise."""
        return _find(self.sources, name, "source")

    def target(self, name: str) -> Target:
        """The target called ``name``; ``UsageError`` listing known targets otherwise."""
        return _find(self.targets, name, "target")

    def mirror(self, name: str) -> Mirror:
        """The mirror called ``name``; ``UsageError`` listing known mirrors otherwise."""
        return _find(self.mirrors, name, "mirror")

    def drill(self, name: str) -> Drill:
        """The drill called ``name``; ``UsageError`` listing known drills otherwise."""
        return _find(self.drills, name, "drill")

    def source_of(self, mirror: Mirror) -> Source:
        """The source ``mirror`` copies (always exists in a validated policy)."""
        return self.source(mirror.source)

    def targets_of(self, mirror: Mirror) -> tuple[Target, ...]:
        """The targets ``mirror`` writes to, in the order the policy lists them."""
        return tuple(self.target(name) for name in mirror.targets)


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


def _find(items: tuple[_N, ...], name: str, kind: str) -> _N:
    for item in items:
        if item.name == name:
            return item
    known = ", ".join(item.name for item in items) or "none"
    raise UsageError(f"no {kind} named '{name}' in the policy", hint=f"known {kind}s: {known}")
