"""``libcloud://DRIVER/container/prefix`` targets: any Apache Libcloud storage driver.

``DRIVER`` is a libcloud provider name (``local``, ``s3``, ``minio``,
``google_storage``, ``azure_blobs``, ``openstack_swift``, ``backblaze_b2``…), as
accepted by ``libcloud.storage.providers.get_driver``. Credentials come from the
environment, never the policy: ``LIBCLOUD_KEY`` and ``LIBCLOUD_SECRET`` (what
each driver calls key and secret). The target's ``endpoint`` (``http[s]://host:port``)
becomes the driver's ``host``/``port``/``secure``; ``region`` is passed to drivers
that take one.

The ``local`` driver keeps containers as directories under ``LIBCLOUD_LOCAL_PATH``
(the target's ``endpoint`` must be an http URL, so the base directory comes from
the environment). Prefer ``file://`` for local disks: libcloud's local driver
writes objects in place, so a reader can see a partly written object, and it
reads a whole file for every ranged read.

Limits of the generic driver API, which this adapter cannot hide:
- **No conditional write.** ``exclusive=True`` checks for the name and then
  writes: it refuses a name that already exists, but two writers racing for the
  same name can both succeed. Use the native ``s3://``, ``gs://`` or ``az://``
  adapters where two writers may share a repository.
- No object lock: ``immutable_days`` is refused when the plan is made.
libcloud's own retries are off unless ``LIBCLOUD_RETRY_FAILED_HTTP_REQUESTS`` is
set (do not): ``drorch.storage.retry`` retries what is transient.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import re
import warnings
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError
from libcloud.common.types import InvalidCredsError, LibcloudError, ServiceUnavailableError
from libcloud.storage.base import Container
from libcloud.storage.providers import get_driver
from libcloud.storage.types import (
    ContainerDoesNotExistError,
    InvalidContainerNameError,
    ObjectDoesNotExistError,
)

from drorch.ports.config import StoreConfig
from drorch.ports.errors import (
    AccessDenied,
    ObjectExists,
    ObjectNotFound,
    StoreError,
    StoreFull,
    TransientStoreError,
    UsageError,
)
from drorch.ports.store import ObjectInfo

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_STATUS = re.compile(r"\b(?:status(?: code)?:?\s*)(\d{3})\b", re.IGNORECASE)
_TRANSPORT = (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)
_FAILURES = (LibcloudError, BaseHTTPError, OSError, ValueError)

# Drivers without server-side prefix filtering (local among them) warn on every prefixed list
# and then filter client-side, which is correct; the warning would only add noise to stderr.
warnings.filterwarnings("ignore", message=r"Driver \w+ does not implement native object filtering",
                        category=UserWarning)


class LibcloudStore:
    def __init__(self, driver: Any, driver_name: str, container: str, prefix: str) -> None:
        self.driver = driver
        self.driver_name = driver_name
        self.container = Container(name=container, extra={}, driver=driver)
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @property
    def location(self) -> str:
        return f"libcloud://{self.driver_name}/{self.container.name}/{self.prefix}".rstrip("/")

    def _fail(self, action: str, name: str, err: Exception) -> StoreError:
        return libcloud_error(err, f"{action} {name} in {self.location}", self.container.name)

    def _object(self, name: str, action: str) -> Any:
        try:
            return self.driver.get_object(self.container.name, self.prefix + name)
        except ObjectDoesNotExistError as err:
            raise ObjectNotFound(f"{name} does not exist in {self.location}") from err
        except _FAILURES as err:
            raise self._fail(action, name, err) from err

    def immutability_problem(self, days: int) -> str | None:
        return (f"{self.location} cannot keep objects immutable (libcloud has no object lock); "
                "remove immutable_days or use s3://, gs:// or az://")

    def put(self, name: str, data: bytes | bytearray | memoryview, *, exclusive: bool = False) -> None:
        if exclusive and self.exists(name):  # best effort: see the module docstring
            raise ObjectExists(f"{name} already exists in {self.location}")
        try:
            self.driver.upload_object_via_stream(iter([bytes(data)]), self.container, self.prefix + name,
                                                 extra={"content_type": "application/octet-stream"})
        except _FAILURES as err:
            raise self._fail("write", name, err) from err

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            return b""
        obj = self._object(name, "read")
        try:
            if offset == 0 and length is None:
                chunks = self.driver.download_object_as_stream(obj)
            else:
                end = None if length is None else min(offset + length, obj.size)
                chunks = self.driver.download_object_range_as_stream(obj, offset, end)
            return b"".join(chunks)
        except ObjectDoesNotExistError as err:
            raise ObjectNotFound(f"{name} does not exist in {self.location}") from err
        except _FAILURES as err:
            raise self._fail("read", name, err) from err

    def exists(self, name: str) -> bool:
        try:
            self._object(name, "look up")
            return True
        except ObjectNotFound:
            return False

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        try:
            for obj in self.driver.iterate_container_objects(self.container, prefix=self.prefix + prefix):
                yield ObjectInfo(obj.name[len(self.prefix):], int(obj.size or 0), _modified(obj))
        except _FAILURES as err:
            raise self._fail("list", prefix or "objects", err) from err

    def delete(self, name: str) -> None:
        try:
            obj = self._object(name, "delete")
            self.driver.delete_object(obj)
        except ObjectNotFound:
            return  # already gone: deletes are retried, so this is success
        except ObjectDoesNotExistError:
            return
        except _FAILURES as err:
            raise self._fail("delete", name, err) from err


def _modified(obj: Any) -> float | None:
    """When the object was written, if the driver says (local: a float; HTTP drivers: a date string)."""
    extra = obj.extra or {}
    value = extra.get("modify_time") or extra.get("last_modified")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(TypeError, ValueError):
            return parsedate_to_datetime(value).timestamp()
        with contextlib.suppress(ValueError):
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def _status(err: Exception) -> int | None:
    for attr in ("http_code", "code"):
        value = getattr(err, attr, None)
        if isinstance(value, int):
            return value
    match = _STATUS.search(str(getattr(err, "value", err)))
    return int(match.group(1)) if match else None


def libcloud_error(err: Exception, doing: str, container: str) -> StoreError:
    """One operator sentence for a libcloud failure, typed so the retry wrapper knows what to retry."""
    if isinstance(err, ContainerDoesNotExistError | InvalidContainerNameError):
        return StoreError(f"cannot {doing}: container {container!r} does not exist",
                          hint="create it or fix the target URL")
    if isinstance(err, _TRANSPORT):
        return TransientStoreError(f"cannot {doing}: the endpoint is unreachable or the connection broke "
                                   f"({type(err).__name__})",
                                   hint="check the network and the target's endpoint")
    if isinstance(err, OSError) and err.errno in _NO_SPACE:
        return StoreFull(f"cannot {doing}: no space left on the device",
                         hint="free space on the target or point it at a larger disk")
    if isinstance(err, InvalidCredsError):
        return AccessDenied(f"cannot {doing}: the credentials were refused",
                            hint="check LIBCLOUD_KEY and LIBCLOUD_SECRET")
    status = _status(err)
    if isinstance(err, RateLimitReachedError | ServiceUnavailableError) or status in (408, 429) or (
            status is not None and status >= 500) or "failed to acquire" in str(err).lower():
        return TransientStoreError(f"cannot {doing}: {f'HTTP {status}' if status else type(err).__name__}"
                                   " (temporary)")
    if status in (401, 403) or isinstance(err, PermissionError):
        return AccessDenied(f"cannot {doing}: access denied ({status or err})",
                            hint="check LIBCLOUD_KEY and LIBCLOUD_SECRET and what they may do")
    if status == 507:
        return StoreFull(f"cannot {doing}: the store refused for lack of space or quota")
    detail = str(getattr(err, "value", None) or err).strip().splitlines()
    return StoreError(f"cannot {doing}: {detail[0] if detail else type(err).__name__}")


def driver_for(target: StoreConfig, name: str) -> Any:
    """An instance of the named libcloud driver, configured from the target and the environment."""
    try:
        cls = get_driver(name)
    except AttributeError as err:
        raise UsageError(f"target {target.name!r}: libcloud has no storage driver {name!r}",
                         hint="use a libcloud provider name such as local, s3, minio, google_storage, "
                              "azure_blobs") from err
    if name == "local":
        base = os.environ.get("LIBCLOUD_LOCAL_PATH")
        if not base:
            raise StoreError(f"cannot open {target.url}: LIBCLOUD_LOCAL_PATH is not set",
                             hint="set it to the directory that holds the local driver's containers")
        try:
            # libcloud's per-object locks leave a lock file in /tmp for every object ever written;
            # objects here are content-addressed or created once, so the locks guard nothing.
            return cls(base, ex_use_locking=False)
        except LibcloudError as err:
            raise StoreError(f"cannot open {target.url}: LIBCLOUD_LOCAL_PATH {base} is not a directory",
                             hint="create it or point LIBCLOUD_LOCAL_PATH at the containers' parent") from err
    kwargs: dict[str, Any] = {}
    if target.endpoint:
        parts = urlsplit(target.endpoint)
        kwargs |= {"host": parts.hostname, "secure": parts.scheme == "https"}
        if parts.port:
            kwargs["port"] = parts.port
    if target.region:
        kwargs["region"] = target.region
    key, secret = os.environ.get("LIBCLOUD_KEY"), os.environ.get("LIBCLOUD_SECRET")
    if not key:
        raise AccessDenied(f"cannot open {target.url}: LIBCLOUD_KEY is not set",
                           hint="set LIBCLOUD_KEY and LIBCLOUD_SECRET to the driver's credentials")
    try:
        return cls(key, secret, **kwargs)
    except TypeError as err:
        raise UsageError(f"target {target.name!r}: libcloud driver {name!r} does not take "
                         f"{', '.join(sorted(kwargs)) or 'these arguments'}",
                         hint="remove endpoint/region from the target") from err


def open_store(target: StoreConfig) -> LibcloudStore:
    driver_name = target.host
    container, _, prefix = target.path.partition("/")
    return LibcloudStore(driver_for(target, driver_name), driver_name, container, prefix)
