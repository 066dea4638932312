"""The public Python API is pinned: removing or renaming a name is a breaking change."""

from __future__ import annotations

import drorch
from drorch.state.tables import StateStore


def test_public_api_is_pinned() -> None:
    assert drorch.__all__ == ["Applier", "ApplyResult", "DrorchError", "KeySource", "Plan", "Policy",
                              "StatusReport", "build_plan", "key_source", "list_snapshots", "load_policy",
                              "policy_status", "restore", "verify"]
    assert all(hasattr(drorch, name) for name in drorch.__all__)


def test_docstring_example_runs(tmp_path, monkeypatch) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("hello\n")
    policy_file = tmp_path / "p.yaml"
    policy_file.write_text(f"""apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {{name: api}}
encryption: {{key: env:DRORCH_KEY}}
sources: [{{name: s, type: directory, path: {source}}}]
targets: [{{name: t, url: "file://{tmp_path / 'repo'}"}}]
mirrors: [{{name: m, source: s, targets: [t], rpo: 1h}}]
""")
    monkeypatch.setenv("DRORCH_KEY", "api-test")
    monkeypatch.setenv("DRORCH_HOME", str(tmp_path / "home"))  # the API journals runs, like the CLI
    policy = drorch.load_policy(policy_file)
    keys = drorch.key_source(policy.encryption)
    result = drorch.Applier(policy, keys).apply(drorch.build_plan(policy, keys=keys))
    assert result.exit_code == 0
    drorch.restore(policy, keys, "latest", tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").read_text() == "hello\n"
    [run] = StateStore().runs("api")  # journaled in $DRORCH_HOME/state.db, as the CLI does
    assert (run.kind, run.mirror, run.status) == ("apply", "m", "ok")
    assert run.snapshot == result.mirrors[0].targets[0].snapshot
