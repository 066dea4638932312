"""A command's policy, read before its arguments are parsed, so that its key derives sooner.

A command that opens repositories waits for scrypt (~0.13 s on purpose). Parsing
the arguments imports typer's converters and pydantic, and validating the policy
builds the models' schemas: ~0.15 s before the policy's key reference and target
would be known. So ``main`` reads the policy first, for the commands below, and
starts deriving its first target's key (``engine.unlock.unlock_document``); the
command then validates the document read here instead of reading the file again.

A policy that cannot be read or parsed here is left to the command, which reads it
again and reports it as it always does.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from drorch.ports.errors import DrorchError

if TYPE_CHECKING:
    from drorch.policy.document import YamlDocument

# The commands whose first argument is a policy whose repositories they open (cli.mirrors).
OPENS_REPOSITORIES = frozenset({"plan", "apply", "snapshots", "restore", "verify", "status"})

# absolute path -> (what stat said of the file before it was read, the document)
_documents: dict[str, tuple[tuple[int, int, int], YamlDocument]] = {}


def preload(argv: list[str]) -> None:
    """Read the policy of ``drorch [OPTIONS] COMMAND POLICY ...`` when COMMAND opens repositories,
    and start deriving its key; nothing for any other command line."""
    policy = _policy_argument(argv)
    if policy is None:
        return
    from drorch.engine.unlock import unlock_document
    from drorch.policy.yamlsource import load_yaml

    try:
        seen = _signature(policy)
        document = load_yaml(policy)
    except (DrorchError, OSError, ValueError):
        return
    _documents[os.path.abspath(policy)] = (seen, document)
    unlock_document(document)


def preloaded(path: str | os.PathLike[str]) -> YamlDocument | None:
    """The document ``preload`` read from ``path``, once; None when it read none, or when the
    file has changed since (a process that runs more than one command)."""
    seen, document = _documents.pop(os.path.abspath(path), (None, None))
    try:
        return document if seen is not None and seen == _signature(path) else None
    except OSError:
        return None


def _signature(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


def _policy_argument(argv: list[str]) -> str | None:
    """POLICY when the command line is ``[OPTIONS] COMMAND POLICY ...`` and COMMAND opens
    repositories (the top level's options take no values)."""
    command = next((i for i, word in enumerate(argv) if not word.startswith("-")), None)
    if command is None or argv[command] not in OPENS_REPOSITORIES or command + 1 >= len(argv):
        return None
    policy = argv[command + 1]
    return None if policy.startswith("-") else policy
