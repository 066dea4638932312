"""Where the terraform/ modules are, and their HCL as Python data (python-hcl2).

Everything is offline: parsing needs no provider plugins. Strings come back
without their HCL quotes; interpolations stay as ``${...}`` text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drorch.terraform import CLOUDS

__all__ = ["CLOUDS", "ROOT", "TERRAFORM", "named_blocks", "parse_file", "parse_module", "typed_blocks",
           "unquote"]

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed (pip install python-hcl2)")


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string quotes ('"s3:GetObject"'); drop them, recursively."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


def parse_file(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return unquote(hcl2.load(handle))  # type: ignore[no-any-return]


def parse_module(cloud: str) -> dict[str, list[Any]]:
    """Every top-level block of the module, merged across its .tf files."""
    merged: dict[str, list[Any]] = {}
    for path in sorted((TERRAFORM / cloud).glob("*.tf")):
        for kind, blocks in parse_file(path).items():
            merged.setdefault(kind, []).extend(blocks)
    return merged


def named_blocks(module: dict[str, list[Any]], kind: str) -> dict[str, Any]:
    """``variable``/``output`` blocks by name."""
    return {name: body for block in module.get(kind, []) for name, body in block.items()}


def typed_blocks(module: dict[str, list[Any]], kind: str, type_: str) -> dict[str, Any]:
    """``resource``/``data`` blocks of one type, by name."""
    return {name: body for block in module.get(kind, []) for t, bodies in block.items() if t == type_
            for name, body in bodies.items()}
