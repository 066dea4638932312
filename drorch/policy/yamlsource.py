"""YAML documents that remember where every key came from.

Policies and runbooks are YAML files written by hand; when one is wrong the
operator needs ``file:line key.path: what is wrong and how to fix it``, for
every problem at once. This module does the generic half of that:

* ``load_yaml`` parses with ruamel.yaml in round-trip mode (the only mode that
  keeps line numbers), converts the tree to plain ``dict``/``list``/scalars,
  expands ``${NAME}`` environment references in string values, and records the
  1-based line of every key and list item under its key path, e.g.
  ``("mirrors", 0, "targets", 1)``.
* ``validate_document`` runs a pydantic model over the data and turns every
  pydantic error into a ``Diagnostic`` (file, line of the nearest known key,
  ``mirrors[0].targets[1]``-style path, message with the fix), raising one
  ``PolicyError`` with all of them.
* ``reject`` and ``validate_together`` let models report problems in their own
  words and at precise key paths, including whole-document checks (dangling
  names, duplicates) that run even when other parts of the document are broken.

Nothing here knows what a policy is, so a runbook model (``kind: Runbook``) gets
the same diagnostics by calling ``validate_document(RunbookModel, load_yaml(p))``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from drorch.policy.document import KeyPath, Problem, YamlDocument, render_path
from drorch.policy.validation import (
    describe_type,
    raise_problems,
    reject,
    validate_document,
    validate_together,
)
from drorch.ports.errors import Diagnostic, PolicyError

__all__ = [
    "KeyPath",
    "Problem",
    "YamlDocument",
    "load_yaml",
    "raise_problems",
    "reject",
    "render_path",
    "validate_document",
    "validate_together",
]

_MAX_DEPTH = 64
_ENV_REF = re.compile(r"\$(\$?)\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def load_yaml(path: str | os.PathLike[str]) -> YamlDocument:
    """Parse the YAML mapping at ``path``.

    Raises ``PolicyError`` (exit code 2) when the file is missing or unreadable,
    is not UTF-8, is not valid YAML (one diagnostic with the line and the
    parser's problem in plain words), is empty, has a top level that is not a
    mapping, or references unset environment variables (one diagnostic each).

    ``${NAME}`` in a string value is replaced by the variable's value; ``$${NAME}``
    is kept as the literal text ``${NAME}``. Keys are never expanded.
    """
    file = Path(path)
    text = _read_text(file)
    try:
        root = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        raise PolicyError([_yaml_diagnostic(str(file), exc)]) from None
    except YAMLError as exc:
        raise PolicyError([Diagnostic(str(file), None, "", f"invalid YAML: {exc}")]) from None
    if root is None:
        raise _file_error(file, "the file is empty; expected a YAML mapping of keys to values")
    if not isinstance(root, CommentedMap):
        got = describe_type(_plain_scalar(root) if not isinstance(root, list) else [])
        raise _file_error(file, f"the top level must be a mapping of keys to values, got {got}")
    builder = _Builder(str(file))
    data = builder.convert(root, ())
    if builder.diagnostics:
        raise PolicyError(builder.diagnostics)
    builder.lines[()] = root.lc.line + 1
    return YamlDocument(file, data, builder.lines)


def _read_text(file: Path) -> str:
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise _file_error(file, "no such file; check the path") from None
    except IsADirectoryError:
        raise _file_error(file, "is a directory; give the path of a YAML file") from None
    except OSError as exc:
        raise _file_error(file, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_error(file, "the file is not UTF-8 text; save it as UTF-8") from None


def _file_error(file: Path, message: str) -> PolicyError:
    return PolicyError([Diagnostic(str(file), None, "", message)])


_YAML_HINTS: tuple[tuple[str, str, bool], ...] = (
    # (substring of the parser's problem or context, plain words, report the context line)
    ("'\\t'", "a tab character; indent with spaces, not tabs", False),
    ("duplicate key", "", False),
    ("another document", "more than one document ('---'); keep one document per file", False),
    ("quoted scalar", "a quoted string is never closed; add the closing quote", True),
    ("flow sequence", "a '[' list is not closed or an item lacks a ','; check brackets", True),
    ("flow mapping", "a '{' mapping is not closed or an item lacks a ','; check braces", True),
    (
        "expected <block end>",
        "the indentation does not line up; indent items of one list or mapping equally",
        False,
    ),
    (
        "mapping values are not allowed",
        "a ':' where none can go; fix the indentation or quote a value containing ': '",
        False,
    ),
)


def _yaml_diagnostic(file: str, exc: MarkedYAMLError) -> Diagnostic:
    """Translate a ruamel parser error into one line an operator can act on.

    The duplicate-key message of ruamel quotes both values, which could be
    secrets, so it is rebuilt from the key name alone.
    """
    problem = str(exc.problem or "")
    context = str(exc.context or "")
    mark = exc.problem_mark or exc.context_mark
    for needle, words, use_context in _YAML_HINTS:
        if needle in problem or needle in context:
            if needle == "duplicate key":
                words = _duplicate_key_words(problem)
            if use_context and exc.context_mark is not None:
                mark = exc.context_mark
            break
    else:
        words = f"{context}, {problem}" if context else problem
    line = mark.line + 1 if mark is not None else None
    return Diagnostic(file, line, "", f"invalid YAML: {words}")


def _duplicate_key_words(problem: str) -> str:
    match = re.search(r'duplicate key "(.*?)" with value', problem)
    key = f"'{match.group(1)}' " if match else ""
    return f"duplicate key {key}in one mapping; keep only one"


class _Builder:
    """Walks a ruamel round-trip tree into plain data, recording lines and env problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[KeyPath, int] = {}
        self.diagnostics: list[Diagnostic] = []

    def convert(self, node: Any, path: KeyPath) -> Any:
        if len(path) > _MAX_DEPTH:
            self._problem(path, f"nested deeper than {_MAX_DEPTH} levels (a recursive alias?)")
            return None
        if isinstance(node, CommentedMap):
            return self._mapping(node, path)
        if isinstance(node, CommentedSeq):
            return self._sequence(node, path)
        value = _plain_scalar(node)
        return self._expand(value, path) if isinstance(value, str) else value

    def _mapping(self, node: CommentedMap, path: KeyPath) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, value in node.items():
            plain_key = _plain_scalar(key)
            child = (*path, plain_key)
            self._remember(child, node.lc.key, key)
            out[plain_key] = self.convert(value, child)
        return out

    def _sequence(self, node: CommentedSeq, path: KeyPath) -> list[Any]:
        out = []
        for index, value in enumerate(node):
            self._remember((*path, index), node.lc.item, index)
            out.append(self.convert(value, (*path, index)))
        return out

    def _remember(self, path: KeyPath, position: Callable[[Any], Any], key: Any) -> None:
        # keys pulled in by a merge (<<:) have no position of their own
        with contextlib.suppress(KeyError, IndexError, TypeError):
            self.lines[path] = position(key)[0] + 1

    def _expand(self, text: str, path: KeyPath) -> str:
        def substitute(match: re.Match[str]) -> str:
            escaped, name = match.group(1), match.group(2)
            if escaped:
                return "${" + name + "}"
            if not _ENV_NAME.fullmatch(name):
                self._problem(
                    path,
                    f"invalid environment reference '${{{name}}}'; "
                    "names use letters, digits and _, e.g. ${DRORCH_KEY}",
                )
                return match.group(0)
            if name not in os.environ:
                self._problem(
                    path,
                    f"environment variable {name} is not set; export it or remove the reference",
                )
                return match.group(0)
            return os.environ[name]

        return _ENV_REF.sub(substitute, text)

    def _problem(self, path: KeyPath, message: str) -> None:
        line = next((self.lines[p] for p in _ancestors(path) if p in self.lines), None)
        self.diagnostics.append(Diagnostic(self.file, line, render_path(path), message))


def _ancestors(path: KeyPath) -> Iterable[KeyPath]:
    for end in range(len(path), -1, -1):
        yield path[:end]


def _plain_scalar(value: Any) -> Any:
    """Strip ruamel's scalar subclasses (which carry formatting) down to builtins."""
    if value is None or isinstance(value, bool):
        return value
    if type(value).__name__ == "ScalarBoolean":
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime):
        return datetime.fromisoformat(value.isoformat())
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    if hasattr(value, "value"):  # TaggedScalar (`!tag value`): keep the text
        return _plain_scalar(value.value)
    return value
