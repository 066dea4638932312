"""Real applies over a changing tree: normal days raise nothing, attacks are flagged end to end.

`status` exits 3 naming the mirror, the snapshot and what is abnormal, the
metric says so, the webhook of ``alerts:`` hears about it, retention keeps
every older snapshot until `drorch ack`, and the acknowledgement clears it all.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ruamel.yaml import YAML

from drorch.anomaly import AnomalyStore

from .conftest import Mirror, ServerTree

NORMAL_RUNS = 50
WARMUP = 9  # MIN_HISTORY applies with a parent, plus the first


def warm_up(mirror: Mirror, tree: ServerTree, runs: int = WARMUP) -> None:
    mirror.apply()
    for _ in range(runs - 1):
        tree.normal_day()
        assert mirror.apply().anomaly == []
        assert mirror.exit_code == 0


def test_fifty_normal_runs_raise_nothing(mirror: Callable[..., Mirror], server_tree: ServerTree) -> None:
    m = mirror()
    warm_up(m, server_tree, NORMAL_RUNS + 1)
    store = AnomalyStore(m.home / "state.db")
    assert len(store.history("e2e", "m")) == NORMAL_RUNS + 1
    assert store.flags("e2e", open_only=False) == []


@pytest.fixture
def webhook() -> Iterator[list[dict[str, Any]]]:
    """A webhook receiver on 127.0.0.1; yields the JSON bodies it was sent."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.append({"url": f"http://127.0.0.1:{server.server_address[1]}/dr"})
    yield received
    server.shutdown()
    server.server_close()


def with_alerts(mirror: Mirror, url: str) -> Mirror:
    yaml = YAML(typ="safe", pure=True)
    doc = yaml.load(mirror.policy_path.read_text())
    doc["alerts"] = {"webhook": url}
    with mirror.policy_path.open("w") as stream:
        yaml.dump(doc, stream)
    from drorch.policy import load_policy

    return Mirror(mirror.policy_path, load_policy(mirror.policy_path), mirror.env)


def test_ransomware_is_flagged_reported_held_and_acknowledged(
        mirror: Callable[..., Mirror], server_tree: ServerTree, webhook: list[dict[str, Any]],
        run_drorch: Callable[..., Any], describe: Callable[..., str], drorch_json: Callable[..., Any]
) -> None:
    m = with_alerts(mirror(retention={"last": 3}), webhook.pop()["url"])
    warm_up(m, server_tree)
    encrypted = server_tree.ransomware(0.30)
    attacked = m.apply()
    assert attacked.files_changed == attacked.files_rewritten == encrypted
    assert m.exit_code == 3  # like `drorch apply`: it ran, and found the signature of damage
    assert any("of files changed" in r for r in attacked.anomaly), attacked.anomaly
    assert any("incompressible" in r for r in attacked.anomaly), attacked.anomaly
    print("ransomware flagged:", attacked.anomaly)
    snapshot = attacked.snapshot or ""

    [alert] = webhook
    assert snapshot[:8] in alert["text"] and "ransomware" in alert["text"]

    env = m.env
    status = run_drorch("status", m.policy_path, env=env)
    assert status.returncode == 3, describe(status)
    assert "ABNORMAL" in status.stdout and "'m'" in status.stdout and snapshot[:8] in status.stdout
    assert "of files changed" in status.stdout, describe(status)
    metrics = run_drorch("status", m.policy_path, "--format", "prometheus", env=env).stdout
    assert 'drorch_anomaly{policy="e2e",mirror="m"} 1' in metrics
    doc = drorch_json("status", m.policy_path, env=env, expect=3)
    [flag] = doc["mirrors"][0]["anomalies"]
    assert flag["snapshot"] == snapshot and flag["reasons"] == attacked.anomaly and doc["breach"]

    held = _snapshots(m)  # retention keeps last 3, but nothing before the flag may go
    for _ in range(3):
        server_tree.normal_day()
        after = m.apply()
        assert after.anomaly == [] and after.forgotten == []
    assert set(held) <= set(_snapshots(m))
    assert any("drorch ack" in reason for reason in after.kept)

    ack = run_drorch("ack", m.policy_path, snapshot[:8], env=env)
    assert ack.returncode == 0 and "acknowledged" in ack.stdout, describe(ack)
    status = run_drorch("status", m.policy_path, env=env)
    assert status.returncode == 0, describe(status)
    metrics = run_drorch("status", m.policy_path, "--format", "prometheus", env=env).stdout
    assert 'drorch_anomaly{policy="e2e",mirror="m"} 0' in metrics

    server_tree.normal_day()
    released = m.apply()
    assert len(_snapshots(m)) == 3 and len(released.forgotten) == len(held) + 4 - 3


def test_touching_every_file_is_not_an_attack(mirror: Callable[..., Mirror], server_tree: ServerTree) -> None:
    """New mtimes (a `touch`, a copy onto new inodes) re-read every file but change no content."""
    m = mirror()
    warm_up(m, server_tree)
    for path in server_tree.files():
        os.utime(path, (1_800_000_000, 1_800_000_000))
    result = m.apply()
    assert result.files_changed == len(server_tree.files()) and result.files_rewritten == 0
    assert result.anomaly == []


def test_mass_deletion_is_flagged(mirror: Callable[..., Mirror], server_tree: ServerTree) -> None:
    m = mirror()
    warm_up(m, server_tree)
    gone = server_tree.mass_deletion(0.5)
    result = m.apply()
    assert result.files_deleted == gone
    assert any("of files deleted" in r for r in result.anomaly), result.anomaly
    print("mass deletion flagged:", result.anomaly)


def test_ack_of_an_unknown_snapshot_is_a_usage_error(
        mirror: Callable[..., Mirror], run_drorch: Callable[..., Any],
        assert_one_error: Callable[..., str]) -> None:
    m = mirror()
    m.apply()
    proc = run_drorch("ack", m.policy_path, "deadbeef", env=m.env)
    assert_one_error(proc, 2, "no flagged snapshot", "deadbeef")


def _snapshots(m: Mirror) -> list[str]:
    from drorch.engine.connect import open_repository
    from drorch.engine.plan import mirror_snapshots
    from drorch.repository.snapshot import load_snapshots

    repo = open_repository(m.policy, "local", m.keys)
    return sorted(s.id for s in mirror_snapshots(load_snapshots(repo), "m"))
