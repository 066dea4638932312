"""The distribution ships every package: pyproject's list matches the folders on disk."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "drorch").rglob("__init__.py")}
    on_disk.add("drorch.providers")
    assert listed == on_disk, f"missing: {sorted(on_disk - listed)}; stale: {sorted(listed - on_disk)}"
    assert config["package-dir"] == {"drorch.providers": "providers"}
