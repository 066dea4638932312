"""``python -m drorch.fleet.forkserver POLICY SOCKET_FD AGENT_PID``: starts mirror jobs by ``fork``.

A mirror job runs in a process of its own so the agent can kill it for
certain (see ``drorch.fleet.job``). Starting that process with a fresh
interpreter costs more CPU than a small job itself: importing the engine,
then parsing and validating the policy (about 1.8 CPU-seconds per job for
a 500-host policy, measured). This server does both once and forks a child
per job, so a job starts with the engine imported and the policy parsed.

The server is single-threaded (forking a threaded process is unsafe; the
agent runs Temporal's threads, so it never forks itself). It re-reads the
policy when the file changes (size, mtime or inode), so an edited policy
takes effect at the next job, as with a fresh process.

Protocol on a ``SOCK_SEQPACKET`` Unix socket shared with the agent (one
JSON object per message):

- agent → server: ``{"id", "mirror", "job_id"}`` with two file descriptors
  attached (the write ends of the job's stdout and stderr pipes);
- server → agent: ``{"id", "pid"}`` once the job is forked (or
  ``{"id", "error"}``), then ``{"exited": pid, "code": N}`` when it ends.

Every job is a session leader (the agent kills its whole group) and dies
with the server (``PR_SET_PDEATHSIG``), which dies with the agent: a
``kill -9`` of the agent never leaves a job running beside its retry.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import traceback
from typing import TYPE_CHECKING, Any

from drorch.fleet.job import die_with_parent, job_main
from drorch.policy import load_policy

if TYPE_CHECKING:
    from drorch.policy.model import Policy

__all__ = ["main"]

_MESSAGE_MAX = 64 * 1024


class _PolicyCache:
    """The parsed policy, re-read when its file changes; ``None`` when it does not load
    (the job then loads it itself and reports the error as a fresh process would)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stamp: tuple[int, int, int] | None = None
        self.policy: Policy | None = None

    def current(self) -> Policy | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
        if stamp != self.stamp:
            self.stamp, self.policy = stamp, None
            try:
                self.policy = load_policy(self.path)
            except Exception:  # noqa: BLE001 - the job reports it, in its own words
                self.stamp = None
        return self.policy


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def _child(sock: socket.socket, wakeup: int, out: int, err: int, policy_path: str, policy: Policy | None,
           request: dict[str, Any]) -> None:
    """In the forked child: become the job (never returns)."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        sock.close()
        os.close(wakeup)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        die_with_parent(os.getppid())
        code = job_main(policy_path, request["mirror"], request["job_id"], policy)
    except BaseException:  # noqa: BLE001 - a child must never return into the server's loop
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _start(sock: socket.socket, wakeup: int, cache: _PolicyCache) -> bool:
    """Read one request and fork its job; False once the agent has closed the socket."""
    data, fds, _flags, _addr = socket.recv_fds(sock, _MESSAGE_MAX, 2)
    if not data:
        return False
    request = json.loads(data)
    if len(fds) != 2:
        for fd in fds:
            os.close(fd)
        _send(sock, {"id": request.get("id"), "error": "a job request needs its stdout and stderr"})
        return True
    out, err = fds
    policy = cache.current()
    try:
        pid = os.fork()
    except OSError as error:
        _send(sock, {"id": request["id"], "error": f"cannot fork a job: {error}"})
        pid = -1
    if pid == 0:
        _child(sock, wakeup, out, err, cache.path, policy, request)
    os.close(out)
    os.close(err)
    if pid > 0:
        _send(sock, {"id": request["id"], "pid": pid})
    return True


def _reap(sock: socket.socket) -> None:
    """Report every job that has ended."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(policy_path: str, sock: socket.socket) -> None:
    """Fork jobs on request until the agent closes its end."""
    cache = _PolicyCache(policy_path)
    cache.current()  # parse once now, so the first job starts as fast as the others
    read_wakeup, write_wakeup = os.pipe()
    os.set_blocking(write_wakeup, False)
    signal.set_wakeup_fd(write_wakeup)
    signal.signal(signal.SIGCHLD, lambda _sig, _frame: None)
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        selector.register(read_wakeup, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is sock and not _start(sock, read_wakeup, cache):
                    return
                if key.fileobj == read_wakeup:
                    os.read(read_wakeup, 512)
            _reap(sock)


def main(argv: list[str]) -> int:
    policy_path, fd, agent = argv[0], int(argv[1]), int(argv[2])
    die_with_parent(agent)
    sock = socket.socket(fileno=fd)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the agent is gone; so are we
        serve(policy_path, sock)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
