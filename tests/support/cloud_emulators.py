"""Real storage emulators on 127.0.0.1, and a proxy that breaks them on purpose.

Shared by tests/conformance and the cloud end-to-end tests (tests/e2e imports
this file by path). Every emulator binds 127.0.0.1 on a free port, starts once
per session (``shared()`` counts users, so two test folders share one server)
and is always stopped at the end, by PID for the ones that are processes.
What each emulator gets wrong compared with the real cloud is listed in
``../shared/EMULATORS.md``; the tests that depend on it say so where they skip.

- ``MotoServer``: moto's ``ThreadedMotoServer`` (S3, IAM), in this process.
- ``GcsEmulator``: gcp-storage-emulator's ``create_server(..., in_memory=True)``, in this process.
- ``Azurite``: ``node_modules/.bin/azurite-blob`` (``npm install`` in the repository root).
- ``FaultProxy``: a ThreadingHTTPServer forwarding to one of them that can answer
  with canned errors (503 SlowDown, 403 AccessDenied…) or drop connections.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key (not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
READY_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (for "endpoint unreachable")."""
    return free_port()


def wait_until(ready: Callable[[], bool], what: str, log: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if ready():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {READY_TIMEOUT_S:.0f} s\n{log()}")


def http_ok(url: str, method: str = "GET", data: bytes | None = None) -> bool:
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return bool(response.status < 400)


# ----------------------------------------------------------------------------- emulators


class MotoServer:
    """S3 (and IAM) on moto's threaded server; ``reset`` empties every backend."""

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        wait_until(lambda: http_ok(f"{self.url}/moto-api/"), "moto server")

    def stop(self) -> None:
        self.server.stop()

    def reset(self) -> None:
        self.require_auth(False)
        http_ok(f"{self.url}/moto-api/reset", "POST", b"")

    def require_auth(self, on: bool) -> None:
        """IAM authentication for every request from now on (moto's INITIAL_NO_AUTH_ACTION_COUNT)."""
        http_ok(f"{self.url}/moto-api/reset-auth", "POST", b"0" if on else b"inf")

    def client(self, service: str = "s3", **credentials: str) -> Any:
        import boto3

        keys = {"aws_access_key_id": self.env["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": self.env["AWS_SECRET_ACCESS_KEY"]} | credentials
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1", **keys)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)


class GcsEmulator:
    """gcp-storage-emulator in memory; ``wipe`` drops every bucket."""

    def start(self) -> None:
        try:
            from gcp_storage_emulator.server import create_server
        except ImportError:
            raise pytest.skip.Exception("gcp-storage-emulator is not installed; `pip install "
                                        "gcp-storage-emulator` to run the GCS tests") from None

        logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
        port = free_port()
        self.server = create_server("127.0.0.1", port, in_memory=True)
        self.server.start()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {"STORAGE_EMULATOR_HOST": self.url}
        wait_until(lambda: http_ok(f"{self.url}/storage/v1/b"), "GCS emulator")

    def stop(self) -> None:
        self.server.stop()

    def wipe(self) -> None:
        self.server.wipe()

    def create_bucket(self, name: str) -> None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="drorch-test", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": self.url})
        client.create_bucket(name)


class Azurite:
    """Azurite's blob service as a child process (its own session, so its children die with it)."""

    def start(self) -> None:
        if not AZURITE_BIN.exists():
            raise pytest.skip.Exception(
                f"Azurite is not installed ({AZURITE_BIN} missing); run `npm install` in the repository "
                "root to run the Azure Blob tests")
        self.workdir = Path(tempfile.mkdtemp(prefix="drorch-azurite-"))
        self.log = self.workdir / "azurite.log"
        port = free_port()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(AZURITE_BIN), "--inMemoryPersistence", "--blobHost", "127.0.0.1",
                 "--blobPort", str(port), "--loose", "--skipApiVersionCheck", "--silent"],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        atexit.register(self.stop)
        self.url = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
        self.env = {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string()}

        def listening() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"Azurite exited with {self.process.returncode}\n{self._log()}")
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True

        try:
            wait_until(listening, "Azurite", self._log)
        except BaseException:
            self.stop()
            raise

    def _log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def connection_string(self, endpoint: str | None = None, key: str = AZURITE_KEY) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
                f"BlobEndpoint={endpoint or self.url};")

    def service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string(), retry_total=0)

    def create_container(self, name: str) -> None:
        self.service().create_container(name)

    def delete_container(self, name: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self.service().delete_container(name)


_KINDS: dict[str, Callable[[], Any]] = {"moto": MotoServer, "gcs": GcsEmulator, "azurite": Azurite}
_running: dict[str, tuple[Any, int]] = {}
_running_lock = threading.Lock()


@contextlib.contextmanager
def shared(kind: str) -> Iterator[Any]:
    """The one running emulator of this kind, started on first use and stopped after the last."""
    with _running_lock:
        if kind not in _running:
            emulator = _KINDS[kind]()
            emulator.start()
            _running[kind] = (emulator, 0)
        emulator, users = _running[kind]
        _running[kind] = (emulator, users + 1)
    try:
        yield emulator
    finally:
        with _running_lock:
            emulator, users = _running[kind]
            if users == 1:
                del _running[kind]
                emulator.stop()
            else:
                _running[kind] = (emulator, users - 1)


@pytest.fixture(scope="session", name="moto_server")
def moto_server_fixture() -> Iterator[MotoServer]:
    with shared("moto") as server:
        yield server


@pytest.fixture(scope="session", name="gcs_server")
def gcs_server_fixture() -> Iterator[GcsEmulator]:
    with shared("gcs") as server:
        yield server


@pytest.fixture(scope="session", name="azurite_server")
def azurite_server_fixture() -> Iterator[Azurite]:
    with shared("azurite") as server:
        yield server


# ----------------------------------------------------------------------------- fault proxy

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
               "te", "trailer", "transfer-encoding", "upgrade", "expect"}


@dataclass(frozen=True)
class Canned:
    """A response the proxy sends instead of forwarding."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Match = Callable[[str, str], bool]  # (method, path) -> does the fault apply


def _any(method: str, path: str) -> bool:
    return True


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of one emulator that fails requests on purpose.

    ``fail_next(n, canned)`` answers the next ``n`` matching requests itself;
    ``fail_always(canned)`` every matching one; ``cut_after(k)`` forwards ``k``
    more matching requests, then drops the connection of every later one
    (without reading its body: the client sees a reset mid-upload). ``heal()``
    forwards everything again. ``seen`` lists every request received.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []
        self.heal()
        handler = type("Handler", (_ProxyHandler,), {"proxy": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{parts.path.rstrip('/')}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def heal(self) -> None:
        with self._lock:
            self._fail_left = 0
            self._canned: Canned | None = None
            self._cut_left: int | None = None  # forwards left before every matching request is cut
            self._match: Match = _any

    def fail_next(self, count: int, canned: Canned, match: Match = _any) -> None:
        with self._lock:
            self._fail_left, self._canned, self._match = count, canned, match

    def fail_always(self, canned: Canned, match: Match = _any) -> None:
        self.fail_next(10**9, canned, match)

    def cut_after(self, forwarded: int, match: Match = _any) -> None:
        with self._lock:
            self._cut_left, self._match = forwarded, match

    @property
    def failed(self) -> int:
        """How many requests are still to be failed by ``fail_next``."""
        return self._fail_left

    def decide(self, method: str, path: str) -> Canned | str:
        with self._lock:
            self.seen.append((method, path))
            if not self._match(method, path):
                return "forward"
            if self._cut_left is not None:
                if self._cut_left == 0:
                    return "cut"
                self._cut_left -= 1
            if self._fail_left and self._canned is not None:
                self._fail_left -= 1
                return self._canned
            return "forward"

    def forward(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
                ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            conn.request(method, path, body=body if body or method in ("PUT", "POST", "PATCH") else None,
                         headers=dict(headers))
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, delayed ACKs add 40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        decision = self.proxy.decide(self.command, self.path)
        if decision == "cut":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = self._body()
        if isinstance(decision, Canned):
            self._reply(decision.status, list(decision.headers.items()), decision.body)
            return
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        if self.headers.get("Transfer-Encoding"):
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        try:
            status, reply_headers, data = self.proxy.forward(self.command, self.path, headers, body)
        except OSError as err:
            self._reply(502, [], f"upstream failed: {err}".encode())
            return
        self._reply(status, reply_headers, data)

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        length = str(len(body))
        for key, value in headers:
            lower = key.lower()
            if lower == "content-length" and self.command == "HEAD":
                length = value  # a HEAD reply states the size of the body it does not carry
            elif lower not in _HOP_BY_HOP and lower not in ("content-length", "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle


# ----------------------------------------------------------------------------- canned replies

def s3_error(status: int, code: str, message: str, **headers: str) -> Canned:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}'
            f"</Message><RequestId>drorch-test</RequestId></Error>").encode()
    return Canned(status, body, {"Content-Type": "application/xml", **headers})


def gcs_error(status: int, reason: str, message: str) -> Canned:
    import json

    body = json.dumps({"error": {"code": status, "message": message,
                                 "errors": [{"reason": reason, "message": message}]}}).encode()
    return Canned(status, body, {"Content-Type": "application/json"})


def azure_error(status: int, code: str, message: str) -> Canned:
    body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>").encode()
    return Canned(status, body, {"Content-Type": "application/xml", "x-ms-error-code": code})


S3_SLOW_DOWN = s3_error(503, "SlowDown", "Please reduce your request rate.")
GCS_BACKEND_ERROR = gcs_error(503, "backendError", "Backend Error")
AZURE_SERVER_BUSY = azure_error(503, "ServerBusy", "The server is busy.")


IN_PROCESS_REGION = "eu-west-1"


@pytest.fixture(name="aws")
def in_process_aws_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process moto account (``mock_aws``) in eu-west-1, with no real credentials reachable."""
    import boto3
    from moto import mock_aws

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", IN_PROCESS_REGION)
    with mock_aws():
        yield boto3.Session(region_name=IN_PROCESS_REGION)
