"""Pydantic validation that speaks to operators: ``file:line key.path: problem; fix``.

``validate_document`` turns every pydantic error into a ``Diagnostic`` (the line
of the nearest key that exists in the file, a ``mirrors[0].targets[1]`` path,
and a message that says what is wrong and what to write instead) and raises one
``PolicyError`` with all of them. ``reject`` and ``validate_together`` let models
phrase their own problems and report whole-document checks (dangling names,
duplicates) at precise key paths, together with field errors.

Nothing here knows what a policy is: runbooks use it the same way.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from drorch.policy.document import KeyPath, Problem, YamlDocument, render_path
from drorch.ports.errors import Diagnostic, PolicyError

__all__ = [
    "describe_type",
    "raise_problems",
    "reject",
    "validate_document",
    "validate_together",
]

M = TypeVar("M", bound=BaseModel)

_ERROR_TYPE = "drorch"


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


def raise_problems(problems: Iterable[Problem], title: str) -> NoReturn:
    """Fail a ``mode="wrap"`` model validator with ``problems`` only, skipping field validation.

    For a document that is the wrong kind altogether, where field errors would
    only bury the one that matters.
    """
    raise ValidationError.from_exception_data(title, [_init_error(*p) for p in problems])


def _init_error(loc: KeyPath, message: str, kind: str = _ERROR_TYPE) -> InitErrorDetails:
    error = PydanticCustomError(kind, "{message}", {"message": message})
    return InitErrorDetails(type=error, loc=loc, input=None)


def _reinit(errors: list[ErrorDetails]) -> list[InitErrorDetails]:
    """Rebuild caught errors so they can be raised again next to new ones.

    Built-in pydantic types are rebuilt by name with their context; anything else
    (``reject`` messages, other custom errors) is carried as its rendered message.
    """
    out = []
    for err in errors:
        if err["type"] in _KNOWN_TYPES:
            init = InitErrorDetails(type=err["type"], loc=err["loc"], input=err["input"])
            if "ctx" in err:
                init["ctx"] = err["ctx"]
        else:
            init = _init_error(err["loc"], err["msg"], kind=err["type"])
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
        return f"expected {_EXPECTED[kind]}, got {describe_type(value)}"
    if kind == "literal_error":
        shown = f"'{value}'" if isinstance(value, str | int | float) else describe_type(value)
        return f"invalid value {shown}; use {ctx['expected']}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"]))
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind].format(**ctx)}, got {value}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty" if ctx.get("min_length") == 1 else err["msg"]
    return err["msg"][:1].lower() + err["msg"][1:]


_BOUNDS = {
    "greater_than_equal": "{ge} or more",
    "greater_than": "more than {gt}",
    "less_than_equal": "{le} or less",
    "less_than": "less than {lt}",
}


def describe_type(value: Any) -> str:
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
        *_BOUNDS,
        "too_short",
        "too_long",
        "string_too_short",
        "string_pattern_mismatch",
        *_EXPECTED,
    }
)
