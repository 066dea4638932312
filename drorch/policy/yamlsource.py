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

import difflib
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from drorch.errors import Diagnostic, PolicyError

__all__ = [
    "KeyPath",
    "Problem",
    "YamlDocument",
    "load_yaml",
    "reject",
    "render_path",
    "validate_document",
    "validate_together",
]

KeyPath = tuple[str | int, ...]
"""Where a value sits in a document: mapping keys and list indexes from the root."""

Problem = tuple[KeyPath, str]
"""A key path (relative to the model being validated) and an operator-facing message."""

M = TypeVar("M", bound=BaseModel)

_ERROR_TYPE = "drorch"
_MAX_DEPTH = 64
_ENV_REF = re.compile(r"\$(\$?)\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]+")


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


# --------------------------------------------------------------------------- loading


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
        got = _describe(_plain_scalar(root) if not isinstance(root, list) else [])
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
        try:
            self.lines[path] = position(key)[0] + 1
        except (KeyError, IndexError, TypeError):
            pass  # keys pulled in by a merge (<<:) have no position of their own

    def _expand(self, text: str, path: KeyPath) -> str:
        def substitute(match: re.Match[str]) -> str:
            escaped, name = match.group(1), match.group(2)
            if escaped:
                return "${" + name + "}"
            if not _ENV_NAME.fullmatch(name):
                self._problem(path, f"invalid environment reference '${{{name}}}'; "
                              "names use letters, digits and _, e.g. ${DRORCH_KEY}")
                return match.group(0)
            if name not in os.environ:
                self._problem(path, f"environment variable {name} is not set; "
                              "export it or remove the reference")
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


# ------------------------------------------------------------------------ validation


def validate_document(
    model_cls: type[M], doc: YamlDocument, *, context: Mapping[str, Any] | None = None
) -> M:
    """Validate ``doc.data`` as ``model_cls`` or raise one ``PolicyError`` listing every problem.

    Validators receive the pydantic context ``{"base_dir": doc.directory,
    "document": doc, **context}``: ``base_dir`` resolves relative paths, and
    ``document`` lets whole-document checks cite lines (``first at line 9``).
    Diagnostics are sorted by line so they read top to bottom.
    """
    full_context = {"base_dir": doc.directory, "document": doc, **(context or {})}
    try:
        return model_cls.model_validate(doc.data, context=full_context)
    except ValidationError as exc:
        diagnostics = _unique(_diagnostic(model_cls, doc, err) for err in exc.errors())
        raise PolicyError(sorted(diagnostics, key=lambda d: d.line or 0)) from None


def reject(message: str) -> NoReturn:
    """Fail a validator with ``message`` shown to the operator verbatim.

    Use instead of ``ValueError`` so pydantic adds no ``Value error,`` prefix and
    braces in the message (``{{ outputs.vm.ip }}``) are not treated as a template.
    """
    raise PydanticCustomError(_ERROR_TYPE, "{message}", {"message": message})


def validate_together(
    data: Any, handler: Callable[[Any], M], problems: Iterable[Problem], title: str
) -> M:
    """Run ``handler(data)`` and report its errors together with ``problems``.

    For ``@model_validator(mode="wrap")``: ``problems`` come from checks over the
    raw input (dangling names, duplicates) that should be reported even when some
    other part of the document fails field validation, so the operator sees every
    problem in one run. Locations in ``problems`` are relative to this model.
    """
    extra = [_init_error(loc, message) for loc, message in problems]
    try:
        model = handler(data)
    except ValidationError as exc:
        raise ValidationError.from_exception_data(title, [*_reinit(exc.errors()), *extra]) from None
    if extra:
        raise ValidationError.from_exception_data(title, extra)
    return model


def _init_error(loc: KeyPath, message: str) -> InitErrorDetails:
    error = PydanticCustomError(_ERROR_TYPE, "{message}", {"message": message})
    return InitErrorDetails(type=error, loc=loc, input=None)


def _reinit(errors: list[ErrorDetails]) -> list[InitErrorDetails]:
    out = []
    for err in errors:
        init = InitErrorDetails(type=err["type"], loc=err["loc"], input=err["input"])
        if "ctx" in err:
            init["ctx"] = err["ctx"]
        if err["type"] not in _KNOWN_TYPES:  # custom types cannot be rebuilt by name
            init = InitErrorDetails(
                type=PydanticCustomError(err["type"], err["msg"]), loc=err["loc"], input=None
            )
        out.append(init)
    return out


def _unique(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return list(dict.fromkeys(diagnostics))


def _diagnostic(model_cls: type[BaseModel], doc: YamlDocument, err: ErrorDetails) -> Diagnostic:
    loc = tuple(part for part in err["loc"] if part != "[key]")
    kind = err["type"]
    if kind == "missing":
        return _at(doc, loc, loc[:-1], f"missing required key '{loc[-1]}'")
    if kind == "extra_forbidden":
        return _at(doc, loc, loc[:-1], _unknown_key(model_cls, loc))
    return _at(doc, loc, loc, _message(err))


def _at(doc: YamlDocument, line_loc: KeyPath, path_loc: KeyPath, message: str) -> Diagnostic:
    return Diagnostic(doc.file, doc.line_of(line_loc), render_path(path_loc), message)


def _unknown_key(model_cls: type[BaseModel], loc: KeyPath) -> str:
    key = str(loc[-1])
    allowed = _allowed_keys(model_cls, loc[:-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}'; did you mean '{close[0]}'?"
    if allowed:
        return f"unknown key '{key}'; allowed keys: {', '.join(allowed)}"
    return f"unknown key '{key}'; remove it"


_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
}


def _message(err: ErrorDetails) -> str:
    """One sentence for a pydantic error: what is wrong and what to write instead.

    Values are echoed only where they cannot be secrets (enum choices, numbers);
    type errors name the type, never the value.
    """
    kind, ctx, value = err["type"], err.get("ctx") or {}, err["input"]
    if kind == _ERROR_TYPE:
        return str(ctx["message"])
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_describe(value)}"
    if kind == "literal_error":
        shown = f"'{value}'" if isinstance(value, str | int | float) else _describe(value)
        return f"invalid value {shown}; use {ctx['expected']}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"]))
    if kind in ("greater_than_equal", "greater_than"):
        bound = f"{ctx['ge']} or more" if "ge" in ctx else f"more than {ctx['gt']}"
        return f"must be {bound}, got {value}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty" if ctx.get("min_length") == 1 else err["msg"]
    return err["msg"][:1].lower() + err["msg"][1:]


def _describe(value: Any) -> str:
    """Name the type of ``value`` in YAML words (the value itself may be a secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# ----------------------------------------------------------- model introspection


def _allowed_keys(model_cls: type[BaseModel], loc: KeyPath) -> list[str]:
    """The keys the model at ``loc`` accepts (aliases as written in YAML), or []."""
    target = _type_at(model_cls, loc)
    if not (isinstance(target, type) and issubclass(target, BaseModel)):
        return []
    return [info.alias or name for name, info in target.model_fields.items()]


def _type_at(tp: Any, loc: KeyPath) -> Any:
    for part in loc:
        tp = _step(_unwrap(tp), part)
        if tp is None:
            return None
    return _unwrap(tp)


def _step(tp: Any, part: str | int) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, info in tp.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
        return args[0]
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    return None


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to the one meaningful type."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            picked = models or members
            if len(picked) != 1:
                return tp
            tp = picked[0]
        else:
            return tp


_KNOWN_TYPES = frozenset(
    {
        "missing",
        "extra_forbidden",
        "literal_error",
        "value_error",
        "assertion_error",
        "greater_than",
        "greater_than_equal",
        "too_short",
        "too_long",
        "string_too_short",
        "string_pattern_mismatch",
        *_EXPECTED,
    }
)
