"""``drorch schedule --metrics-port N``: the status exposition at ``http://127.0.0.1:N/metrics``.

Bound to loopback only: the figures name mirrors, targets and drills, which is
for a local Prometheus (or an agent) to scrape, not for the network. Each
scrape renders ``drorch status --format prometheus``, cached for ``cache_s``
so a scrape storm does not read every repository each time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["MetricsServer"]


class MetricsServer:
    def __init__(self, port: int, render: Callable[[], str], *, cache_s: float = 15.0) -> None:
        self.render = render
        self.cache_s = cache_s
        self._cached: tuple[float, str] | None = None
        self._lock = threading.Lock()
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "only /metrics is served")
                    return
                try:
                    body = owner.text().encode()
                    status = 200
                except Exception as error:  # noqa: BLE001 - a scrape error, not a crash
                    body, status = f"# drorch status failed: {error}\n".encode(), 500
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="drorch-metrics", daemon=True)

    def text(self) -> str:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > self.cache_s:
                self._cached = (time.monotonic(), self.render())
            return self._cached[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
