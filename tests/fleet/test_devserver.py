"""``drorch fleet dev``: the embedded engine on 127.0.0.1, stopped cleanly by SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from drorch.fleet import devserver


def test_fleet_dev_serves_on_loopback_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = devserver.free_port()
    env = {**os.environ, "DRORCH_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "drorch", "fleet", "dev", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "fleet dev did not start"
                time.sleep(0.2)
        assert (tmp_path / "home" / "fleet" / "engine.db").exists()  # state under $DRORCH_HOME
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
        assert subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).returncode == 1
    finally:
        devserver.stop_process(proc)  # type: ignore[arg-type]
