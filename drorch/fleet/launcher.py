"""The agent's side of the fork server: start a mirror job, read its output, learn its exit.

``JobLauncher.launch`` asks ``drorch.fleet.forkserver`` (started on first use,
restarted if it died) for a forked job and returns a ``LaunchedJob`` that
looks to ``drorch.fleet.activities`` like a subprocess: ``pid`` (a session
leader, so ``os.killpg(pid, SIGKILL)`` stops it with everything it started),
``communicate()`` and ``wait()``.

One reader thread receives the server's messages and settles the futures on
the agent's event loop; a server that dies settles every job it had as
killed (its jobs died with it, ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["JobLauncher", "LaunchError", "LaunchedJob"]

_KILLED = -9  # the exit code a job reports when the server died under it


class LaunchError(RuntimeError):
    """The fork server could not start a job (it could not fork, or it is gone)."""


class LaunchedJob:
    """A forked mirror job: its output pipes and, once it has ended, its exit code."""

    def __init__(self, pid: int, stdout: int, stderr: int, exited: asyncio.Future[int]) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._pipes = (stdout, stderr)
        self._exited = exited

    async def wait(self) -> int:
        self.returncode = await self._exited
        return self.returncode

    async def communicate(self) -> tuple[bytes, bytes]:
        out, err, _ = await asyncio.gather(_read_all(self._pipes[0]), _read_all(self._pipes[1]), self.wait())
        return out, err


async def _read_all(fd: int) -> bytes:
    """Everything written to the pipe until its last writer closes it."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(fd, "rb", 0))
    try:
        return await reader.read()
    finally:
        transport.close()


class _Connection:
    """One fork server's socket and what it still owes the agent."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.started: dict[int, asyncio.Future[int]] = {}  # request id → pid
        self.exits: dict[int, asyncio.Future[int]] = {}  # pid → exit code
        self.early: dict[int, int] = {}  # exits that arrived before launch() registered the pid


class JobLauncher:
    """One fork server per agent process and policy file."""

    def __init__(self, policy_path: Path) -> None:
        self.policy_path = policy_path
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: subprocess.Popen[bytes] | None = None
        self._conn: _Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> _Connection:
        """Start the server unless it runs (the agent starts it before its workers run)."""
        with self._lock:
            if self._server is not None and self._server.poll() is None and self._conn is not None:
                return self._conn
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self._server = subprocess.Popen(
                [sys.executable, "-m", "drorch.fleet.forkserver", str(self.policy_path),
                 str(theirs.fileno()), str(os.getpid())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            theirs.close()
            self._conn = _Connection(ours)
            threading.Thread(target=self._receive, args=(self._conn,), name="drorch-fleet-launcher",
                             daemon=True).start()
            return self._conn

    async def launch(self, mirror: str, job_id: str) -> LaunchedJob:
        """Fork a job running ``mirror`` for ``job_id``; ``LaunchError`` if it cannot."""
        self._loop = asyncio.get_running_loop()
        conn = self.start()
        request = next(self._ids)
        started: asyncio.Future[int] = self._loop.create_future()
        conn.started[request] = started
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            message = json.dumps({"id": request, "mirror": mirror, "job_id": job_id}).encode()
            try:
                socket.send_fds(conn.sock, [message], [out_w, err_w])
            except OSError as error:
                conn.started.pop(request, None)
                raise LaunchError(f"the job launcher is gone ({error})") from None
        finally:
            os.close(out_w)
            os.close(err_w)
        try:
            pid = await started
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            raise
        exited: asyncio.Future[int] = self._loop.create_future()
        if pid in conn.early:
            _settle(exited, conn.early.pop(pid))
        else:
            conn.exits[pid] = exited
        return LaunchedJob(pid, out_r, err_r, exited)

    def stop(self) -> None:
        """Close the socket: the server exits, and with it any job still running."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.sock.shutdown(socket.SHUT_RDWR)
            if self._server is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._server.wait(timeout=5)

    # ------------------------------------------------------------------ the reader thread

    def _receive(self, conn: _Connection) -> None:
        while True:
            try:
                data = conn.sock.recv(64 * 1024)
            except OSError:
                data = b""
            if not data:
                self._call(_server_gone, conn)
                conn.sock.close()
                return
            self._call(_dispatch, conn, json.loads(data))

    def _call(self, fn: Any, *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(fn, *args)


def _dispatch(conn: _Connection, message: dict[str, Any]) -> None:
    """On the event loop: one message of the server."""
    if "exited" in message:
        pid, code = int(message["exited"]), int(message["code"])
        future = conn.exits.pop(pid, None)
        if future is None:
            conn.early[pid] = code
        else:
            _settle(future, code)
        return
    started = conn.started.pop(int(message["id"]), None)
    if started is None or started.done():  # the activity was cancelled while the job was forked
        if "pid" in message:
            pid = int(message["pid"])
            conn.exits[pid] = asyncio.get_running_loop().create_future()  # its exit, awaited by no one
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        return
    if "error" in message:
        started.set_exception(LaunchError(str(message["error"])))
    else:
        started.set_result(int(message["pid"]))


def _server_gone(conn: _Connection) -> None:
    """On the event loop: the server died or was stopped; so did its jobs (PDEATHSIG)."""
    for started in conn.started.values():
        if not started.done():
            started.set_exception(LaunchError("the job launcher stopped before starting the job"))
    for future in conn.exits.values():
        _settle(future, _KILLED)
    conn.started.clear()
    conn.exits.clear()


def _settle(future: asyncio.Future[int], code: int) -> None:
    if not future.done():
        future.set_result(code)
