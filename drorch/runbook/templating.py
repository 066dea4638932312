"""Strict ``{{ ... }}`` templates: ``outputs.STEP.KEY``, ``vars.NAME`` and ``run.id``.

Runbooks pass values between steps with templates. They are resolved
strictly: a reference to an unknown step, a later step, an output the step
does not produce or an undefined variable is a validation error when the file
is loaded (``model.py`` reports it with file:line), and a value that is still
missing when the step runs (its step was skipped by ``when``) fails the step.
A template never silently becomes an empty string at 3 a.m.

There is no expression language: a template is one reference. ``when``
conditions add exactly two operators, ``==`` and ``!=``, between two
(templated) strings; a bare value is true unless it is empty, ``false``,
``no``, ``off``, ``0``, ``none`` or ``null`` (any case).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Ref",
    "Scope",
    "TemplateError",
    "evaluate_when",
    "find_refs",
    "parse_refs",
    "render",
    "render_value",
]

_TEMPLATE = re.compile(r"\{\{(.*?)\}\}")
_OUTPUT = re.compile(r"outputs\.([A-Za-z0-9][A-Za-z0-9._-]*)\.([A-Za-z_][A-Za-z0-9_]*)")
_VAR = re.compile(r"vars\.([A-Za-z_][A-Za-z0-9_-]*)")
_RUN = re.compile(r"run\.(id)")
_USAGE = "use {{ outputs.STEP.KEY }}, {{ vars.NAME }} or {{ run.id }}"
_FALSE = frozenset({"", "false", "no", "off", "0", "none", "null"})


class TemplateError(ValueError):
    """A template that cannot be resolved; ``str()`` is the sentence for the operator."""


@dataclass(frozen=True)
class Ref:
    """One ``{{ ... }}`` reference, as written (``text``) and parsed."""

    kind: Literal["outputs", "vars", "run"]
    key: str
    step: str | None = None
    text: str = ""


def parse_refs(text: str) -> list[Ref]:
    """Every reference in ``text``; ``TemplateError`` for one that is malformed or unclosed."""
    refs = []
    for match in _TEMPLATE.finditer(text):
        refs.append(_parse_one(match.group(0), match.group(1).strip()))
    rest = _TEMPLATE.sub("", text)
    if "{{" in rest:
        start = rest.index("{{")
        raise TemplateError(f"unclosed template '{rest[start:start + 40]}'; close it with }}}}")
    return refs


def _parse_one(text: str, inner: str) -> Ref:
    if match := _OUTPUT.fullmatch(inner):
        return Ref("outputs", match.group(2), match.group(1), text)
    if match := _VAR.fullmatch(inner):
        return Ref("vars", match.group(1), None, text)
    if _RUN.fullmatch(inner):
        return Ref("run", "id", None, text)
    raise TemplateError(f"invalid template '{text}'; {_USAGE}")


def find_refs(value: Any, path: tuple[str | int, ...] = ()
              ) -> Iterator[tuple[tuple[str | int, ...], Ref | TemplateError]]:
    """Each reference in a nested value with its key path; malformed ones as the error."""
    if isinstance(value, str):
        try:
            for ref in parse_refs(value):
                yield path, ref
        except TemplateError as error:
            yield path, error
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from find_refs(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from find_refs(item, (*path, index))


@dataclass
class Scope:
    """What templates resolve against while a run goes on.

    ``outputs`` grows as steps finish; ``skipped`` names steps whose ``when`` was
    false. With ``placeholders`` (``--dry-run``), outputs that do not exist yet
    render as ``<STEP.KEY>`` instead of failing.
    """

    vars: Mapping[str, str] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_id: str = ""
    skipped: set[str] = field(default_factory=set)
    placeholders: bool = False

    def lookup(self, ref: Ref) -> str:
        if ref.kind == "vars":
            if ref.key not in self.vars:
                raise TemplateError(f"variable '{ref.key}' has no value in {ref.text}; "
                                    f"pass --var {ref.key}=VALUE")
            return self.vars[ref.key]
        if ref.kind == "run":
            return self.run_id or "<run.id>"
        assert ref.step is not None
        if ref.step in self.outputs and ref.key in self.outputs[ref.step]:
            return format_value(self.outputs[ref.step][ref.key])
        if self.placeholders:
            return f"<{ref.step}.{ref.key}>"
        if ref.step in self.skipped:
            raise TemplateError(f"step '{ref.step}' was skipped (its when: was false), "
                                f"so {ref.text} has no value")
        if ref.step in self.outputs:
            raise TemplateError(f"step '{ref.step}' produced no '{ref.key}' for {ref.text}")
        raise TemplateError(f"step '{ref.step}' has not run, so {ref.text} has no value")


def format_value(value: Any) -> str:
    """How an output value reads inside a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def render(text: str, scope: Scope) -> str:
    """``text`` with every reference replaced; ``TemplateError`` if one has no value."""
    parse_refs(text)  # reject malformed and unclosed templates first
    return _TEMPLATE.sub(lambda m: scope.lookup(_parse_one(m.group(0), m.group(1).strip())), text)


def render_value(value: Any, scope: Scope) -> Any:
    """``value`` with every string inside it rendered; other values are kept as they are."""
    if isinstance(value, str):
        return render(value, scope)
    if isinstance(value, Mapping):
        return {key: render_value(item, scope) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(item, scope) for item in value]
    return value


def split_condition(expression: str) -> tuple[str, str | None, str | None]:
    """``"a == b"`` → ``("a", "==", "b")``; a bare value → ``(value, None, None)``."""
    for operator in ("==", "!="):
        left, found, right = expression.partition(f" {operator} ")
        if found:
            return left.strip(), operator, right.strip()
    return expression.strip(), None, None


def evaluate_when(when: str | bool | None, scope: Scope) -> bool:
    """Whether a step with this ``when`` runs (see the module docstring for the grammar)."""
    if when is None or isinstance(when, bool):
        return when is not False
    left, operator, right = split_condition(when)
    left_value = render(left, scope).strip()
    if operator is None:
        return left_value.lower() not in _FALSE
    right_value = render(right or "", scope).strip()
    return (left_value == right_value) == (operator == "==")
