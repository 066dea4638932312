"""Lazy package exports (PEP 562): a package names its public API without importing it.

``drorch --help`` must start in well under 150 ms, so importing ``drorch`` or one of
its packages must not pull in the whole engine (pydantic models, runbook steps,
cloud SDKs). A package lists where each public name lives; the name is imported
on first attribute access and then cached in the package's namespace.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any


def exports(package: str, homes: dict[str, tuple[str, ...]], *, subpackages: tuple[str, ...] = ()
            ) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``homes`` maps a module to the names it defines.

    ``subpackages`` are exported names that are also subpackages (``drorch.restore``
    is both the API function and the package of restore code). Importing such a
    subpackage binds it on the package, hiding the lazy name, so they are imported
    here, first (they must be cheap), and unbound again.
    """
    where = {name: module for module, names in homes.items() for name in names}
    for name in subpackages:
        import_module(f"{package}.{name}")
        delattr(sys.modules[package], name)

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(where[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
