"""Hosts as network namespaces: an agent partitioned mid-job never overlaps its replacement.

Three namespaces (names start with ``fleet-``): the engine's, and two hosts'
each joined to it by a veth pair; addresses exist only inside the namespaces.
Both hosts run an agent for host ``web1``. The job starts on the first; its
link is cut (``ip link set ... down``) mid-upload. The first agent stops its
job once the engine stops acknowledging its heartbeats, the engine retries it
on the second agent after the heartbeat timeout, and the job completes there:
the ledger shows the first attempt ended before the second began, the
target has exactly one snapshot and ``restic check --read-data`` passes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drorch.fleet import devserver

from .helpers import Fleet, make_data, no_overlap, restic_check, restic_snapshots, write_policy

pytestmark = [pytest.mark.slow, pytest.mark.restic]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


def _can_make_namespaces() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


@pytest.fixture
def hosts() -> Iterator[dict[str, str]]:
    """``srv``, ``h1``, ``h2`` namespaces; ``h1``/``h2`` reach the engine at 10.231.{1,2}.1."""
    if not _can_make_namespaces():
        pytest.skip("network namespaces need root and iproute2")
    tag = f"{os.getpid() % 100000}"
    names = {role: f"fleet-{tag}-{role}" for role in ("srv", "h1", "h2")}
    made: list[str] = []
    try:
        for ns in names.values():
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        for index, role in ((1, "h1"), (2, "h2")):
            srv_end, host_end = f"fl{tag}s{index}", f"fl{tag}h{index}"
            _ip("link", "add", srv_end, "netns", names["srv"], "type", "veth", "peer", "name", host_end,
                "netns", names[role])
            _ip("-n", names["srv"], "addr", "add", f"10.231.{index}.1/24", "dev", srv_end)
            _ip("-n", names[role], "addr", "add", f"10.231.{index}.2/24", "dev", host_end)
            _ip("-n", names["srv"], "link", "set", srv_end, "up")
            _ip("-n", names[role], "link", "set", host_end, "up")
        yield names | {"h1_link": f"fl{tag}h1"}
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def _in(ns: str) -> list[str]:
    return ["ip", "netns", "exec", ns]


def test_partitioned_agent_never_overlaps_its_replacement(fleet: Fleet, hosts: dict[str, str]) -> None:
    port = devserver.free_port()
    command = devserver.command(port, fleet.tmp / "engine.db")
    command[command.index("--ip") + 1] = "0.0.0.0"  # every address of the engine's namespace
    server = subprocess.Popen([*_in(hosts["srv"]), *command], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        probe = [*_in(hosts["srv"]), sys.executable, "-c",
                 f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)"]
        fleet.wait_for("the engine in its namespace",
                       lambda: subprocess.run(probe, capture_output=True).returncode == 0, timeout=60)
        source = make_data(fleet.tmp / "src", 40)
        repo = fleet.tmp / "repo"
        policy = write_policy(fleet.tmp / "p.yaml", fleet.name, source, repo)
        slow = {"DRORCH_FLEET_TEST_PUT_DELAY_S": "1.5"}
        env = {role: {**fleet.env, **slow, "DRORCH_ENGINE": f"10.231.{i}.1:{port}"}
               for i, role in ((1, "h1"), (2, "h2"))}
        ctl = {**fleet.env, "DRORCH_ENGINE": f"127.0.0.1:{port}"}

        def drorch(*args: str) -> subprocess.CompletedProcess[str]:
            proc = subprocess.run([*_in(hosts["srv"]), sys.executable, "-m", "drorch", *args], env=ctl,
                                  capture_output=True, text=True, timeout=180)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            return proc

        fleet.agent(policy, "web1", env=env["h1"], prefix=tuple(_in(hosts["h1"])), log="h1")
        fleet.wait_for("h1's agent", lambda: _polling(hosts["srv"], ctl, policy), timeout=60)
        drorch("fleet", "run", str(policy), "--mirror", "web")
        fleet.wait_for("the job on h1", lambda: fleet.ledger_entries(), timeout=60)
        fleet.agent(policy, "web1", env=env["h2"], prefix=tuple(_in(hosts["h2"])), log="h2")
        fleet.wait_for("a pack uploaded from h1", lambda: (repo / "data").exists() and
                       any(p.is_file() for p in (repo / "data").rglob("*")), timeout=90)

        _ip("-n", hosts["h1"], "link", "set", hosts["h1_link"], "down")  # partition h1 mid-upload
        try:
            joined = json.loads(drorch("fleet", "run", str(policy), "--mirror", "web", "--wait",
                                       "--json").stdout)
        finally:
            _ip("-n", hosts["h1"], "link", "set", hosts["h1_link"], "up")

        entries = fleet.ledger_entries()
        starts = [e for e in entries if e["event"] == "start"]
        assert len(starts) == 2 and starts[0]["agent"] != starts[1]["agent"], entries
        result = joined["result"]
        first = [e for e in entries if e["event"] == "end" and e["run_id"] == starts[0]["run_id"]
                 and e["attempt"] == starts[0]["attempt"]]
        # h1 stops its own job once the engine stops acknowledging it ("fenced"). On a slow
        # machine its job may instead finish before the lease runs out, unreported behind the cut:
        # then the retry must find that snapshot and publish none of its own.
        assert len(first) == 1, entries
        assert first[0]["outcome"] == "fenced" or (
            first[0]["outcome"] == "exit 0" and result.get("already_published")), (first, result)
        no_overlap(entries, "web")
        # (whether h1 was cut before or after its index was written, the retry reuses its data)
        assert [s["short_id"] for s in restic_snapshots(repo, fleet.env["DRORCH_KEY"])] == \
            [result["snapshot"][:8]]
        restic_check(repo, fleet.env["DRORCH_KEY"])
    finally:
        fleet.stop()
        devserver.stop_process(server)


def _polling(ns: str, env: dict[str, str], policy: Path) -> bool:
    """An agent of web1 is seen by the engine (status exits 3 here: no snapshot yet)."""
    proc = subprocess.run([*_in(ns), sys.executable, "-m", "drorch", "fleet", "status", str(policy),
                           "--json", "--dead-after", "30"], env=env, capture_output=True, text=True,
                          timeout=60)
    if not proc.stdout.strip():
        return False
    return any(a["alive"] for a in json.loads(proc.stdout)["agents"] if a["host"] == "web1")
