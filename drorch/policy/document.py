"""A YAML document's data and the line of every key path in it.

Shared by the loader (``yamlsource``) and the diagnostics (``validation``): both
speak in key paths such as ``("mirrors", 0, "targets", 1)``, rendered for people
as ``mirrors[0].targets[1]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drorch.ports.errors import Diagnostic

__all__ = ["KeyPath", "Problem", "YamlDocument", "absolute_path", "render_path"]

_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]+")

KeyPath = tuple[str | int, ...]
"""Where a value sits in a document: mapping keys and list indexes from the root."""

Problem = tuple[KeyPath, str]
"""A key path (relative to the model being validated) and an operator-facing message."""


def absolute_path(raw: str, base: Path) -> Path:
    """``raw`` as an absolute path: kept as written if absolute, else joined to ``base``.

    Relative paths are resolved (``..`` and symlinks followed, as ``cd`` would),
    so a policy means the same thing whichever directory drorch runs from; a
    leading ``~`` is the user's home, as in a shell. Here, free of pydantic, so
    that a command can read its policy's target before the models are built
    (``drorch.engine.unlock.unlock_document``).
    """
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    return (base / path).resolve()


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML mapping plus the line of every key path in it.

    ``data`` holds only plain Python values (``dict``, ``list``, ``str``, ``int``,
    ``float``, ``bool``, ``None``, dates) with ``${NAME}`` already expanded, so it
    can be handed to pydantic or compared in tests without ruamel types leaking.
    """

    path: Path
    data: dict[str, Any]
    lines: Mapping[KeyPath, int] = field(default_factory=dict)

    @property
    def file(self) -> str:
        """The file name as the operator gave it; diagnostics start with this."""
        return str(self.path)

    @property
    def directory(self) -> Path:
        """Absolute directory of the file: the base for relative paths inside it."""
        return self.path.absolute().parent

    def line_of(self, loc: Iterable[str | int]) -> int | None:
        """Line of ``loc`` or of its nearest ancestor that appears in the file.

        A missing key has no line of its own, so its parent's line is the best
        place to send the operator.
        """
        path = tuple(loc)
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)

    def diagnostic(self, loc: Iterable[str | int], message: str) -> Diagnostic:
        """A ``Diagnostic`` for ``loc`` in this document."""
        loc = tuple(loc)
        return Diagnostic(self.file, self.line_of(loc), render_path(loc), message)


def render_path(loc: Iterable[str | int]) -> str:
    """Render a key path the way operators read it: ``mirrors[0].targets[1]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out
