"""Where the fleet engine is and how to reach it: the environment, never the policy.

    DRORCH_ENGINE              HOST:PORT of the Temporal frontend (default 127.0.0.1:7233)
    DRORCH_NAMESPACE           Temporal namespace (default ``default``)
    DRORCH_ENGINE_TLS          1/true: connect with TLS (implied by a certificate or an API key)
    DRORCH_ENGINE_TLS_CA       PEM file of the CA that signed the server's certificate
    DRORCH_ENGINE_TLS_CERT     PEM client certificate (mTLS, e.g. Temporal Cloud)
    DRORCH_ENGINE_TLS_KEY      PEM key of that certificate
    DRORCH_ENGINE_TLS_SERVER_NAME  name to check the server's certificate against
    DRORCH_ENGINE_API_KEY      API key (Temporal Cloud); sent as a bearer token, never logged

Secrets are read here and handed to the SDK only; ``EngineConfig`` never
prints the API key or the private key (``describe()`` names the address,
namespace and whether TLS is on).

The SDK (``temporalio``) is imported inside functions only, so the
single-host path works with no engine installed; without it fleet commands
fail with one sentence naming the extra to install.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drorch.ports.errors import DrorchError, UsageError

if TYPE_CHECKING:
    from temporalio.client import Client

__all__ = ["EngineConfig", "EngineUnreachable", "connect", "require_sdk"]

DEFAULT_ENGINE = "127.0.0.1:7233"
MISSING_SDK = "fleet mode needs the Temporal SDK, which is not installed: pip install 'drorch[fleet]'"


class EngineUnreachable(DrorchError):
    """The engine did not answer (not started, wrong address, TLS or key refused)."""


def require_sdk() -> None:
    """Raise one sentence (exit 2) when the ``fleet`` extra is not installed."""
    try:
        import temporalio  # noqa: F401
    except ImportError:
        raise UsageError(MISSING_SDK) from None


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read the engine TLS file {path}: {error.strerror}") from None


@dataclass(frozen=True)
class EngineConfig:
    address: str = DEFAULT_ENGINE
    namespace: str = "default"
    tls: bool = False
    ca: str | None = None
    cert: str | None = None
    key: str | None = field(default=None, repr=False)
    server_name: str | None = None
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, engine: str | None = None, env: dict[str, str] | None = None) -> EngineConfig:
        """``--engine`` wins over ``DRORCH_ENGINE``; everything else comes from the environment."""
        env = dict(os.environ if env is None else env)
        api_key = env.get("DRORCH_ENGINE_API_KEY") or None
        cert = env.get("DRORCH_ENGINE_TLS_CERT") or None
        ca = env.get("DRORCH_ENGINE_TLS_CA") or None
        return cls(address=engine or env.get("DRORCH_ENGINE") or DEFAULT_ENGINE,
                   namespace=env.get("DRORCH_NAMESPACE") or "default",
                   tls=_flag(env.get("DRORCH_ENGINE_TLS")) or bool(api_key or cert or ca),
                   ca=ca, cert=cert, key=env.get("DRORCH_ENGINE_TLS_KEY") or None,
                   server_name=env.get("DRORCH_ENGINE_TLS_SERVER_NAME") or None, api_key=api_key)

    def describe(self) -> str:
        return f"{self.address} (namespace {self.namespace}{', TLS' if self.tls else ''})"

    def tls_config(self) -> Any:
        """The SDK's TLS setting: False, True (system CAs) or a ``TLSConfig``."""
        if not self.tls:
            return False
        from temporalio.client import TLSConfig

        if not (self.ca or self.cert or self.server_name):
            return True
        return TLSConfig(server_root_ca_cert=_read(self.ca), client_cert=_read(self.cert),
                         client_private_key=_read(self.key), domain=self.server_name)


async def connect(config: EngineConfig | None = None) -> Client:
    """A connected client, or ``EngineUnreachable`` as one sentence (never the key)."""
    require_sdk()
    from temporalio.client import Client

    config = config or EngineConfig.from_env()
    try:
        return await Client.connect(config.address, namespace=config.namespace,
                                    tls=config.tls_config(), api_key=config.api_key)
    except Exception as error:  # noqa: BLE001 - the SDK raises several types for one cause
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if config.api_key:
            reason = reason.replace(config.api_key, "***")
        raise EngineUnreachable(f"cannot reach the fleet engine at {config.describe()}: {reason}",
                                hint="start one with `drorch fleet dev`, or set DRORCH_ENGINE") from None
