"""The policy file: load, validate, and the models the planner reads.

``load_policy(path)`` is the one entry point: it parses the YAML (keeping line
numbers), expands ``${ENV}`` references, validates every section and every
cross-reference, and returns an immutable ``Policy`` or raises one
``PolicyError`` (exit code 2) that lists every problem as
``file:line key.path: message``.

The YAML machinery (``load_yaml``, ``validate_document``) is generic and is
re-exported for other document kinds, such as runbooks.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from drorch import lazy

if TYPE_CHECKING:
    from drorch.policy.durations import format_duration, parse_duration
    from drorch.policy.model import (
        API_VERSION,
        Check,
        Consistency,
        Drill,
        Encryption,
        Instance,
        Metadata,
        Mirror,
        Policy,
        Recovery,
        Retention,
        Source,
        Standby,
        Target,
    )
    from drorch.policy.yamlsource import (
        YamlDocument,
        load_yaml,
        raise_problems,
        reject,
        render_path,
        validate_document,
        validate_together,
    )

# Imported on first use (drorch.lazy): `drorch --help` needs none of the pydantic models.
__getattr__ = lazy.exports(__name__, {
    "drorch.policy.durations": ("format_duration", "parse_duration"),
    "drorch.policy.model": ("API_VERSION", "Check", "Consistency", "Drill", "Encryption", "Instance",
                            "Metadata", "Mirror", "Policy", "Recovery", "Retention", "Source", "Standby",
                            "Target"),
    "drorch.policy.yamlsource": ("YamlDocument", "load_yaml", "raise_problems", "reject", "render_path",
                                 "validate_document", "validate_together"),
})

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
    "Standby",
    "Target",
    "YamlDocument",
    "format_duration",
    "load_policy",
    "load_yaml",
    "parse_duration",
    "raise_problems",
    "reject",
    "render_path",
    "validate_document",
    "validate_together",
]


def load_policy(path: str | os.PathLike[str], *, document: YamlDocument | None = None) -> Policy:
    """Load and validate the ``kind: MirrorPolicy`` file at ``path``.

    Relative paths inside it are resolved against the file's own directory.
    Raises ``PolicyError`` listing every problem; never returns a partial policy.
    ``document`` is the file already parsed (``load_yaml``), which is then not read
    again: the CLI reads it early to start deriving the repository key
    (``drorch.cli.preload``).
    """
    from drorch.policy.model import Policy
    from drorch.policy.yamlsource import load_yaml, validate_document

    if document is None:
        document = load_yaml(path)
    return validate_document(Policy, document)
