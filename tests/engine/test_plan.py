"""The plan is self-contained: apply runs from it alone, never re-opening what it opened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drorch import registry
from drorch.engine.apply import apply, apply_policy
from drorch.engine.plan import Mode, build_plan
from drorch.policy import load_policy
from drorch.ports.store import ObjectStore
from drorch.secrets import StaticPassword
from drorch.state.tables import StateStore


class CountingKeys(StaticPassword):
    """The real password source, counting how often a repository key is asked for."""

    def __init__(self, value: bytes) -> None:
        super().__init__(value)
        self.calls: list[bool] = []

    def password(self, store: ObjectStore, *, create: bool = False) -> bytes:
        self.calls.append(create)
        return super().password(store, create=create)


def _policy(tmp_path: Path, mode: str = "sync") -> Path:
    source = tmp_path / "data"
    source.mkdir(exist_ok=True)
    (source / "a.txt").write_text("plan me\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"""apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {{name: planned}}
encryption: {{key: env:DRORCH_KEY}}
sources: [{{name: s, type: directory, path: {source}}}]
targets:
  - {{name: one, url: "file://{tmp_path / 'one'}"}}
  - {{name: two, url: "file://{tmp_path / 'two'}"}}
mirrors: [{{name: m, source: s, targets: [one, two], rpo: 1h, mode: {mode}}}]
""")
    return policy


@pytest.fixture
def counted_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every provider the registry opens, by name."""
    opened: list[str] = []
    real = registry.load

    def load(kind: str, name: str) -> Any:
        opened.append(f"{kind}:{name}")
        return real(kind, name)

    monkeypatch.setattr(registry, "load", load)
    return opened


def test_apply_reuses_the_plans_stores_and_derives_each_key_once(
        tmp_path: Path, counted_loads: list[str]) -> None:
    policy = load_policy(_policy(tmp_path))
    first = CountingKeys(b"k")
    apply(build_plan(policy, keys=first), state=StateStore(tmp_path / "state.db"))
    assert first.calls == [True, True]  # two new repositories: one password each, made by apply
    counted_loads.clear()

    again = CountingKeys(b"k")
    plan = build_plan(policy, keys=again)
    assert counted_loads == ["store:file", "store:file"] and again.calls == [False, False]
    result = apply(plan, state=StateStore(tmp_path / "state.db"))
    assert result.exit_code == 0
    assert counted_loads == ["store:file", "store:file"], "apply opened a store the plan had opened"
    assert again.calls == [False, False], "apply derived a key the plan had derived"


def test_plan_json_is_plain_and_typed(tmp_path: Path) -> None:
    policy = load_policy(_policy(tmp_path, mode="async"))
    plan = build_plan(policy, keys=StaticPassword(b"k"))
    [mirror] = plan.mirrors
    assert mirror.mode is Mode.ASYNC and mirror.source_spec is policy.source("s")
    doc = json.loads(json.dumps(plan.to_json()))
    assert doc["mirrors"][0]["mode"] == "async"
    assert "store" not in doc["mirrors"][0]["targets"][0] and "keys" not in doc
    assert doc["mirrors"][0]["targets"][0]["create_repository"] is True


def test_apply_policy_records_the_run(tmp_path: Path) -> None:
    policy = load_policy(_policy(tmp_path))
    state = StateStore(tmp_path / "state.db")
    result = apply_policy(policy, keys=StaticPassword(b"k"), state=state)
    assert result.exit_code == 0
    [run] = state.runs("planned")
    assert run.mirror == "m" and run.status == "ok" and run.snapshot == result.mirrors[0].targets[0].snapshot
