"""``drorch agent --host NAME POLICY``: the worker that acts for one or more hosts.

An agent polls the task queue of each host it serves (mirror jobs and the
runbook steps that name the host) and the policy's workflow queue (workflow
code: any agent may run it, it moves no data). Several agents may serve one
host: the engine hands each task to one of them, and a job whose agent dies
is retried on the next.

SIGTERM (or Ctrl-C): stop taking work, give running jobs ``grace_s`` to
finish, then kill what is left and hand it back (the engine retries it on
another agent at once), and exit 0.

Tuning from the environment (tests set them small; the defaults suit
production): ``DRORCH_FLEET_STICKY_S`` (how long a workflow waits for the
agent that cached it before any agent takes it, default 5s).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from drorch.fleet.engine_client import EngineConfig, connect
from drorch.fleet.messages import host_queue, workflow_queue
from drorch.policy import load_policy
from drorch.ports.errors import UsageError

__all__ = ["AgentOptions", "run_agent", "systemd_unit"]


@dataclass(frozen=True)
class AgentOptions:
    hosts: tuple[str, ...]
    grace_s: float = 30.0
    max_jobs: int = 4  # concurrent activities per host queue
    pollers: int = 2  # activity pollers per host queue (agents serving many hosts want 1)
    workflows: bool = True  # also run workflow code


def _env_seconds(name: str, default: float) -> timedelta:
    return timedelta(seconds=float(os.environ.get(name) or default))


async def run_agent(policy_path: Path, options: AgentOptions, engine: EngineConfig | None = None,
                    stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set); see the module docstring."""
    from temporalio.worker import PollerBehaviorSimpleMaximum, UnsandboxedWorkflowRunner, Worker

    from drorch.fleet.activities import AgentActivities
    from drorch.fleet.launcher import JobLauncher
    from drorch.fleet.workflows import WORKFLOWS

    policy_path = policy_path.absolute()
    policy = load_policy(policy_path)
    for host in options.hosts:
        policy.host(host)  # UsageError naming the known hosts
    client = await connect(engine)
    name = policy.metadata.name
    identity = f"{socket.gethostname()}/{os.getpid()}"
    launcher = JobLauncher(policy_path)
    launcher.start()  # before the workers' threads: the server forks jobs, the agent never does
    acts = AgentActivities(client, policy_path, launcher, identity)
    grace = timedelta(seconds=options.grace_s)
    workers = [Worker(client, task_queue=host_queue(name, host), activities=[acts.run_mirror, acts.run_step],
                      identity=f"{identity}@{host}", max_concurrent_activities=options.max_jobs,
                      activity_task_poller_behavior=PollerBehaviorSimpleMaximum(options.pollers),
                      graceful_shutdown_timeout=grace)
               for host in options.hosts]
    if options.workflows:
        # Workflow code runs unsandboxed: it uses only workflow APIs and the plain messages of
        # drorch.fleet.messages (no I/O, clocks or randomness), and the sandbox re-imports
        # modules for every workflow run, which costs more CPU than the jobs at fleet scale.
        runner = UnsandboxedWorkflowRunner()
        workers.append(Worker(client, task_queue=workflow_queue(name), workflows=WORKFLOWS,
                              workflow_runner=runner,
                              identity=f"{identity}@workflows", graceful_shutdown_timeout=grace,
                              sticky_queue_schedule_to_start_timeout=_env_seconds("DRORCH_FLEET_STICKY_S", 5),
                              workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(2)))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runs = [asyncio.ensure_future(w.run()) for w in workers]
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait([waiter, *runs], return_when=asyncio.FIRST_COMPLETED)
    failed = next((r for r in runs if r.done() and r.exception()), None)
    await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
    waiter.cancel()
    launcher.stop()
    if failed is not None:
        raise UsageError(f"agent stopped: {failed.exception()}")


UNIT = """[Unit]
Description=drorch fleet agent for {hosts} ({policy})
Documentation=https://github.com/drorch/drorch#fleet
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart={exe} agent {host_args} {policy_path}
# Engine address, namespace, TLS files and API key: never in the policy.
EnvironmentFile=-/etc/drorch/agent.env
Environment=DRORCH_HOME=/var/lib/drorch
# SIGTERM: running jobs get the grace period, then are handed back to another agent.
KillSignal=SIGTERM
TimeoutStopSec={stop_s}
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


def systemd_unit(policy_path: Path, hosts: tuple[str, ...], grace_s: float) -> str:
    """A unit file that runs this agent as a service (``drorch agent --export systemd``)."""
    exe = Path(sys.argv[0]).absolute() if Path(sys.argv[0]).name == "drorch" else Path(sys.executable)
    command = str(exe) if exe.name == "drorch" else f"{exe} -m drorch"
    return UNIT.format(hosts=", ".join(hosts), policy=policy_path.name, exe=command,
                       host_args=" ".join(f"--host {h}" for h in hosts),
                       policy_path=policy_path.absolute(), stop_s=int(grace_s) + 30)
