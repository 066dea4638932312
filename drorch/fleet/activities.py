"""Activities: what an agent does on its host, with the engine functions the CLI uses.

``run_mirror`` runs ``drorch.engine.apply.apply_policy`` for one mirror in a
child process (``drorch.fleet.job``, forked by the agent's fork server,
``drorch.fleet.launcher``) and heartbeats while it works. Its
heartbeats are sent as direct calls whose answer it waits for, so it knows
when the engine last heard from it: the engine retries the job elsewhere
only after ``heartbeat_s`` without a heartbeat, and the agent kills its own
job after half of that without an acknowledged one (a partition, an engine
gone). So a retried job never overlaps the attempt it replaces; the kill is
safe at any point (the retry adopts uploaded packs, one snapshot is published).

``run_step`` runs one runbook step (or its undo) with the same step
implementations and the same ``StepAttempts`` (render, deadline, retries,
backoff) as the local engine. A step whose agent died mid-way is retried on
the host's next agent only if its action is idempotent; otherwise it fails,
as ``runbook resume`` refuses to re-run it silently.

On worker shutdown (agent SIGTERM, after its grace period) an unfinished job
is killed and handed back: it fails with a retryable error so the host's
next agent starts it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.client import AsyncActivityCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from drorch.fleet.launcher import JobLauncher, LaunchedJob, LaunchError
from drorch.fleet.messages import JobInput, StepInput

if TYPE_CHECKING:
    from temporalio.client import Client

__all__ = ["LEDGER_ENV", "AgentActivities"]

LEDGER_ENV = "DRORCH_FLEET_LEDGER"
"""Optional JSON-lines file where agents record every job attempt's start and end (tests, bench)."""

_LEASE_FRACTION = 0.5  # stop a job after this share of heartbeat_s without an acknowledged heartbeat
_RPC_FRACTION = 0.25  # how long one heartbeat call may take (a busy engine answers late, not never)


def _interval(heartbeat_s: float) -> float:
    return max(0.2, heartbeat_s / 5)


class _Lease:
    """Acknowledged heartbeats for one activity attempt; ``lost`` once the engine may retry it."""

    def __init__(self, client: Client, heartbeat_s: float) -> None:
        info = activity.info()
        self.handle = client.get_async_activity_handle(task_token=info.task_token)
        self.heartbeat_s = heartbeat_s
        self.acked = time.monotonic() - heartbeat_s  # nothing acknowledged yet
        self.answered = False
        self.reason: str | None = None
        self.last_error = ""

    async def beat(self, details: Any = None) -> None:
        sent = time.monotonic()
        activity.heartbeat(details)  # the worker's own bookkeeping (it times out silent activities)
        try:
            await asyncio.wait_for(self.handle.heartbeat(details), timeout=self.heartbeat_s * _RPC_FRACTION)
            self.acked = sent
            self.answered = True
        except AsyncActivityCancelledError:
            self.reason = "the engine cancelled the job"
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                self.reason = "the engine gave this attempt up (heartbeat timeout); it is retried elsewhere"
            self.last_error = f"{error.status.name if error.status else 'RPC'}: {error.message}"
        except (TimeoutError, OSError, RuntimeError) as error:
            self.last_error = type(error).__name__  # unacknowledged; ``lost`` decides
        if self.reason is None and time.monotonic() - self.acked > self.heartbeat_s * _LEASE_FRACTION:
            self.reason = (f"no heartbeat acknowledged by the engine for "
                           f"{time.monotonic() - self.acked:.1f}s (last: {self.last_error or 'no answer'})")

    @property
    def lost(self) -> bool:
        return self.reason is not None


@dataclass
class AgentActivities:
    """The activities of one agent process (one policy, any number of hosts)."""

    client: Client
    policy_path: Path
    launcher: JobLauncher
    identity: str = f"{socket.gethostname()}/{os.getpid()}"

    # ------------------------------------------------------------------ mirrors

    @activity.defn(name="run_mirror")
    async def run_mirror(self, job: JobInput) -> dict[str, Any]:
        info = activity.info()
        lease = _Lease(self.client, job.heartbeat_s)
        await lease.beat({"agent": self.identity, "phase": "starting"})
        if lease.lost or not lease.answered:
            raise ApplicationError(f"not starting {job.mirror}: {lease.reason or 'no heartbeat answer'}")
        try:
            process = await self.launcher.launch(job.mirror, str(info.workflow_run_id or info.workflow_id))
        except LaunchError as error:
            raise ApplicationError(f"{job.mirror}: cannot start the job on {self.identity}: {error}",
                                   type="LaunchFailed") from None
        self._ledger("start", job, info, process.pid)
        talk = asyncio.ensure_future(process.communicate())
        try:
            while not lease.lost:
                done, _ = await asyncio.wait({talk}, timeout=_interval(job.heartbeat_s))
                if done:
                    break
                await lease.beat({"agent": self.identity, "pid": process.pid})
        except asyncio.CancelledError:
            await _kill(process, talk)
            self._ledger("end", job, info, process.pid, "handed-back")
            if activity.is_worker_shutdown():
                raise ApplicationError(f"agent {self.identity} is stopping: {job.mirror} handed back",
                                       type="HandedBack") from None
            raise
        if lease.lost:
            await _kill(process, talk)
            self._ledger("end", job, info, process.pid, "fenced")
            raise ApplicationError(f"{job.mirror}: job stopped on {self.identity}: {lease.reason}",
                                   type="LeaseLost")
        stdout, stderr = talk.result()
        self._ledger("end", job, info, process.pid, f"exit {process.returncode}")
        return _job_outcome(job, process.returncode or 0, stdout, stderr, self.identity)

    def _ledger(self, event: str, job: JobInput, info: activity.Info, pid: int, outcome: str = "") -> None:
        path = os.environ.get(LEDGER_ENV)
        if not path:
            return
        line = json.dumps({"event": event, "policy": job.policy, "mirror": job.mirror,
                           "workflow_id": info.workflow_id, "run_id": info.workflow_run_id,
                           "attempt": info.attempt, "agent": self.identity, "pid": pid,
                           "t": time.time(), "outcome": outcome})
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ runbook steps

    @activity.defn(name="run_step")
    async def run_step(self, step: StepInput) -> dict[str, Any]:
        from drorch.fleet.steps import prepare_step

        prepared = prepare_step(self.policy_path, step, attempt=activity.info().attempt)
        if isinstance(prepared, dict):
            return prepared
        result = _in_thread(prepared)
        while not result.done():
            activity.heartbeat({"agent": self.identity, "step": step.index})
            try:
                await asyncio.wait_for(asyncio.shield(result), timeout=_interval(step.heartbeat_s))
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                if activity.is_worker_shutdown():
                    raise ApplicationError(f"agent {self.identity} is stopping: step handed back",
                                           type="HandedBack") from None
                raise
        return result.result()


def _in_thread(fn: Callable[[], dict[str, Any]]) -> asyncio.Future[dict[str, Any]]:
    """``fn()`` on a daemon thread (a stuck step must not keep a stopping agent alive)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[dict[str, Any]] = loop.create_future()

    def settle(value: dict[str, Any] | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value or {})

    def work() -> None:
        try:
            value = fn()
        except BaseException as error:  # noqa: BLE001 - handed to the event loop
            loop.call_soon_threadsafe(settle, None, error)
            return
        loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=work, name="drorch-fleet-step", daemon=True).start()
    return future


async def _kill(process: LaunchedJob, talk: asyncio.Future[Any]) -> None:
    """SIGKILL the job's process group and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
    talk.cancel()


_TARGET_KEYS = ("target", "ok", "snapshot", "error", "packs_adopted", "bytes_added")


def _job_outcome(job: JobInput, code: int, stdout: bytes, stderr: bytes, agent: str) -> dict[str, Any]:
    """The job's result, or the error the workflow retries (exit 1) or gives up on (exit 2)."""
    try:
        result = json.loads(stdout) if stdout.strip() else {}
    except ValueError:
        result = {}
    if code in (0, 3) and result:
        mirror = result["mirrors"][0]
        return {"mirror": job.mirror, "host": job.host, "agent": agent, "exit_code": code,
                "already_published": bool(result.get("already_published")),
                "snapshot": mirror["targets"][0].get("snapshot") if mirror["targets"] else None,
                "targets": [{k: t.get(k) for k in _TARGET_KEYS} for t in mirror["targets"]]}
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    if not lines and result:
        mirror = result["mirrors"][0]
        lines = [mirror.get("error") or next((t["error"] for t in mirror["targets"] if t.get("error")),
                                             f"exit {code}")]
    message = f"{job.mirror} on {job.host}: {lines[-1] if lines else f'job exited with {code}'}"
    if code == 2:
        raise ApplicationError(message, type="UsageError", non_retryable=True)
    raise ApplicationError(message, type="MirrorFailed")
