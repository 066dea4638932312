"""Where copies go and how they are sealed: ``Target`` and ``Encryption``.

Both guard the same rule: no secret is ever written in a policy file. A key is
a reference (``env:``, ``file:``, ``kms:``); a URL carrying ``user:password@``
or a signed query string is refused. Messages never echo the refused value,
because it is a secret sitting in a file that is about to be committed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, ValidationInfo, field_validator

from drorch import registry
from drorch.policy.fields import Name, StrictModel, resolve_path
from drorch.policy.validation import reject
from drorch.ports.config import StoreConfig

__all__ = ["Encryption", "Target"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_PARAM = re.compile(
    r"sig|signature|secret|token|password|passwd|pwd|key|credential|auth|^sv$|^se$|^sp$|x-amz-",
    re.IGNORECASE,
)
_INLINE_SECRET = (
    "never write secrets in the policy; use env:NAME or file:PATH "
    "(or kms:aws:ARN, kms:gcp:NAME, kms:azure:URL)"
)


class Encryption(StrictModel):
    """Where the repository key comes from; the key itself never appears in the policy.

    ``key`` is ``env:NAME``, ``file:PATH`` (relative paths are made absolute),
    ``kms:aws:ARN``, ``kms:gcp:NAME`` or ``kms:azure:URL``. Anything else is
    taken for an inline secret and refused without echoing it.
    """

    key: str

    @property
    def scheme(self) -> str:
        """``env``, ``file``, ``kms:aws``, ``kms:gcp`` or ``kms:azure``."""
        if self.key.startswith("kms:"):
            return ":".join(self.key.split(":", 2)[:2])
        return self._split()[0]

    @property
    def reference(self) -> str:
        """What the scheme points at: variable name, absolute file path, or KMS key id."""
        if self.key.startswith("kms:"):
            return self.key.split(":", 2)[2]
        return self._split()[1]

    def _split(self) -> tuple[str, str]:
        scheme, _, rest = self.key.partition(":")
        return scheme, rest

    @field_validator("key")
    @classmethod
    def _check_key(cls, key: str, info: ValidationInfo) -> str:
        scheme, _, rest = key.partition(":")
        if scheme == "env":
            if not _ENV_NAME.fullmatch(rest):
                reject("env: needs a variable name, e.g. env:DRORCH_KEY")
            return key
        if scheme == "file":
            if not rest:
                reject("file: needs a path, e.g. file:/etc/drorch/key")
            return f"file:{resolve_path(rest, info)}"
        if scheme == "kms":
            _check_kms(rest)
            return key
        reject(f"the key looks like an inline secret; {_INLINE_SECRET}")


_KMS_FORMS: dict[str, tuple[Callable[[str], bool], str]] = {
    "aws": (
        lambda ref: ref.startswith("arn:") and ":kms:" in ref,
        "kms:aws: needs a key ARN, e.g. kms:aws:arn:aws:kms:eu-west-1:123456789012:key/ID",
    ),
    "gcp": (
        lambda ref: ref.startswith("projects/") and "/cryptoKeys/" in ref,
        "kms:gcp: needs a key name, e.g. kms:gcp:projects/P/locations/L/keyRings/R/cryptoKeys/K",
    ),
    "azure": (
        lambda ref: ref.startswith("https://"),
        "kms:azure: needs a key URL, e.g. kms:azure:https://VAULT.vault.azure.net/keys/NAME",
    ),
}


def _check_kms(rest: str) -> None:
    provider, _, ref = rest.partition(":")
    if provider not in _KMS_FORMS:
        reject(f"unknown KMS '{provider}'; use kms:aws:ARN, kms:gcp:NAME or kms:azure:URL")
    accepts, hint = _KMS_FORMS[provider]
    if not accepts(ref):
        reject(hint)


class Target(StrictModel):
    """Where copies go: one restic-format repository per target.

    ``url`` is ``file:///abs/path``, ``file://relative/path`` (resolved against
    the policy file's directory and rewritten as ``file:///abs/path``),
    ``s3://bucket/prefix``, ``gs://bucket/prefix``, ``az://container/prefix`` or
    ``libcloud://DRIVER/container``. Credentials in the URL (user info, signed
    query strings) are refused: they belong in the environment or a key file.
    """

    name: Name
    url: str
    region: str | None = None
    endpoint: str | None = None
    # None: no object lock. Lock cannot be undone and many stores lack it, so each
    # target opts in; without it only retention deletes, and only what the policy says.
    immutable_days: int | None = Field(default=None, ge=0)
    # COMPLIANCE is the stronger mode: not even the root account can shorten it.
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "COMPLIANCE"

    @property
    def scheme(self) -> str:
        """``file``, ``s3``, ``gs``, ``az``, ``libcloud`` or a plugin's; providers register by it."""
        return self.url.partition("://")[0]

    @property
    def local_path(self) -> Path | None:
        """The absolute directory of a ``file://`` target; ``None`` for object stores."""
        if self.scheme != "file":
            return None
        return Path(self.url.partition("://")[2])

    def store_config(self) -> StoreConfig:
        """The plain value an adapter opens: the URL parsed here, once, for every layer."""
        return StoreConfig(self.name, self.url, self.region, self.endpoint, self.immutable_days,
                           self.object_lock_mode)

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str, info: ValidationInfo) -> str:
        scheme, sep, rest = url.partition("://")
        if not sep or not registry.has("store", scheme):
            shown = f"scheme '{scheme}'" if sep else "URL without a scheme"
            plugins = registry.plugin_names("store")
            reject(
                f"unsupported {shown}; use file:///path, s3://bucket/prefix, "
                "gs://bucket/prefix, az://container/prefix or libcloud://DRIVER/container"
                + (f" (or a plugin's: {', '.join(plugins)})" if plugins else "")
            )
        if scheme == "file":
            if not rest:
                reject("file:// needs a path, e.g. file:///var/lib/drorch/repo or file://repo")
            return f"file://{resolve_path(rest, info)}"
        _refuse_credentials(url)
        _check_store_location(scheme, rest)
        return url

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, endpoint: str | None) -> str | None:
        if endpoint is None:
            return None
        if not endpoint.startswith(("http://", "https://")):
            reject("endpoint must be an http:// or https:// URL, e.g. http://localhost:9000")
        _refuse_credentials(endpoint)
        return endpoint

    @field_validator("immutable_days")
    @classmethod
    def _lockable(cls, days: int | None, info: ValidationInfo) -> int | None:
        if days is not None and str(info.data.get("url", "")).startswith("file://"):
            reject(
                "file:// targets have no object lock; remove immutable_days "
                "or use an object store that supports it"
            )
        return days


def _refuse_credentials(url: str) -> None:
    """Refuse user info and credential-bearing query strings without echoing them."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        reject(f"the URL carries credentials (user:password@); {_INLINE_SECRET}")
    if not parts.query:
        return
    if any(_SECRET_PARAM.search(name) for name, _ in parse_qsl(parts.query)):
        reject(f"the URL query string carries credentials; {_INLINE_SECRET}")
    reject("query strings are not supported in URLs; use the region and endpoint keys")


_BUCKET_NOUN = {"s3": "bucket", "gs": "bucket", "az": "container"}


def _check_store_location(scheme: str, rest: str) -> None:
    """The URL shapes of the built-in object stores; a plugin's scheme checks its own."""
    host, _, path = rest.partition("/")
    if scheme == "libcloud":
        if not host or not path.strip("/"):
            reject("libcloud:// needs a driver and a container, e.g. libcloud://s3/acme-dr")
    elif scheme in _BUCKET_NOUN and not host:
        reject(f"{scheme}:// needs a {_BUCKET_NOUN[scheme]}, e.g. {scheme}://acme-dr/shop")
