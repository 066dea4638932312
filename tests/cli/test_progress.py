"""Progress people can plan by: a total, a percentage and an ETA, in MiB, for apply and for copies.

Driven through real applies with the plain-lines renderer (what logs and
pipes get); lines are printed on every advance here instead of every 10 s.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from drorch.cli import progress as progress_module
from drorch.cli.progress import LineProgress
from drorch.cost.sample import scan_tree
from drorch.engine.apply import Applier
from drorch.engine.plan import build_plan
from drorch.policy import load_policy
from drorch.secrets import StaticPassword

KEYS = StaticPassword(b"progress")


def _apply(policy: Path) -> list[str]:
    stream = io.StringIO()
    loaded = load_policy(policy)
    result = Applier(loaded, KEYS, progress=LineProgress(stream)).apply(build_plan(loaded, keys=KEYS))
    assert result.exit_code == 0, result
    return stream.getvalue().splitlines()


def test_apply_and_copy_show_total_and_eta_in_mib(
        tmp_path: Path, build_dataset: Callable[..., Path], make_policy: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "PLAIN_EVERY_S", 0.0)
    source = build_dataset(tmp_path / "src", big_size=3 << 20)
    policy = make_policy(tmp_path, source, tmp_path / "a", mode="async")
    yaml = YAML(typ="safe", pure=True)
    doc = yaml.load(policy.read_text())
    doc["targets"].append({"name": "far", "url": f"file://{tmp_path / 'b'}"})
    doc["mirrors"][0]["targets"].append("far")
    with policy.open("w") as stream:
        yaml.dump(doc, stream)
    total = scan_tree(source).bytes / 2**20

    first = _apply(policy)  # no parent snapshot: the total comes from the pre-scan
    assert f"m → local: {total:.1f} MiB to go" in first, first
    at = [line for line in first if line.startswith("m → local: at ")]
    # Before the first byte there is no rate yet, so "ETA unknown" is the honest answer there.
    eta = rf"of {total:.1f} MiB \(\d+%\), .*(ETA \d+s|ETA unknown, 0\.0 MiB/s)"
    assert at and all(re.search(eta, line) for line in at), at
    assert any(re.search(r"ETA \d+s", line) for line in at), at
    assert any(line.startswith(f"m → local: done, {total:.1f} of {total:.1f} MiB (100%)") for line in first)
    copy = [line for line in first if line.startswith("m → far (copy):")]
    assert copy[0].endswith("MiB to go") and "done," in copy[-1] and "(100%)" in copy[-1], copy

    (source / "added.txt").write_text("one more file\n" * 100)
    second = _apply(policy)  # the parent snapshot's size is the total
    assert f"m → local: {total:.1f} MiB to go" in second, second
