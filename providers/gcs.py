"""``gs://bucket/prefix`` targets: Google Cloud Storage.

Credentials come from Google's standard chain (``GOOGLE_APPLICATION_CREDENTIALS``,
``gcloud auth application-default login``, workload identity); the policy never
holds them. ``STORAGE_EMULATOR_HOST`` (or the target's ``endpoint`` together with
it) points the client at an emulator with anonymous credentials.

The SDK's own retries are off (``retry=None`` on every call): ``drorch.storage.retry``
retries what is transient, once, in one place. Create-if-absent is
``if_generation_match=0``, which GCS evaluates atomically. Objects above
``multipart_threshold`` go up as a resumable upload in ``part_size`` chunks;
both are attributes of the store so tests can lower them.

``immutable_days`` sets per-object retention (GCS "object retention lock") on
every object written: mode ``Locked`` for ``object_lock_mode: COMPLIANCE`` and
``Unlocked`` for ``GOVERNANCE``, retained until now + ``immutable_days``. The
bucket must have object retention enabled (``--enable-per-object-retention``);
GCS then refuses to delete or replace the object before that date, which is
reported as ``ObjectLocked`` so prune keeps it and says why. Temporary and
event-based holds are not used: they never expire, so they would keep data
forever unless something released them.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud import storage  # type: ignore[attr-defined]
from google.cloud.storage.exceptions import DataCorruption

from drorch.ports.config import StoreConfig
from drorch.ports.errors import (
    AccessDenied,
    ObjectExists,
    ObjectLocked,
    ObjectNotFound,
    StoreError,
    StoreFull,
    TransientStoreError,
)
from drorch.ports.store import ObjectInfo

TIMEOUT = (10.0, 120.0)  # connect, read (seconds)
_CHUNK = 256 * 1024  # resumable chunks must be multiples of this
_RATE_LIMITED = {"rateLimitExceeded", "userRateLimitExceeded"}
_QUOTA = {"quotaExceeded", "storageQuotaExceeded"}
_TRANSPORT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
              auth_exc.TransportError, DataCorruption, ConnectionError, TimeoutError)


class GcsStore:
    multipart_threshold = 8 * 1024 * 1024  # above this: resumable upload
    part_size = 16 * 1024 * 1024  # resumable chunk; a multiple of 256 KiB
    list_page_size = 1000

    def __init__(self, client: Any, bucket: str, prefix: str, *, lock_days: int | None = None,
                 lock_mode: str = "COMPLIANCE") -> None:
        self.client = client
        self.bucket = client.bucket(bucket)
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.lock_days = lock_days
        self.lock_mode = "Locked" if lock_mode == "COMPLIANCE" else "Unlocked"
        self._bucket_seen = False

    @property
    def location(self) -> str:
        return f"gs://{self.bucket.name}/{self.prefix}".rstrip("/")

    def _blob(self, name: str) -> Any:
        return self.bucket.blob(self.prefix + name)

    def _fail(self, action: str, name: str, err: Exception) -> StoreError:
        return gcs_error(err, f"{action} {name} in {self.location}", self.bucket.name,
                         getattr(self.client, "api_endpoint", None))

    def _bucket_missing(self) -> bool:
        """Whether the bucket is gone (asked once a 404 makes it a question; cached once seen)."""
        if not self._bucket_seen:
            try:
                self._bucket_seen = bool(self.bucket.exists(retry=None, timeout=TIMEOUT))
            except (gexc.GoogleAPICallError, *_TRANSPORT):
                return False  # cannot tell (e.g. no storage.buckets.get): assume it is there
        return not self._bucket_seen

    def _not_found(self, action: str, name: str) -> StoreError:
        """A 404 means the object or the whole bucket is missing; tell the operator which."""
        if self._bucket_missing():
            return _missing_bucket(f"{action} {name} in {self.location}", self.bucket.name)
        return ObjectNotFound(f"{name} does not exist in {self.location}")

    def _retention(self, blob: Any) -> None:
        if self.lock_days:
            blob.retention.mode = self.lock_mode
            blob.retention.retain_until_time = (dt.datetime.now(dt.UTC)
                                                + dt.timedelta(days=self.lock_days))

    def immutability_problem(self, days: int) -> str | None:
        """Per-object retention needs a bucket created with object retention enabled."""
        try:
            self.bucket.reload(retry=None, timeout=TIMEOUT)
        except gexc.NotFound as err:
            doing = f"read the retention settings of {self.location}"
            raise _missing_bucket(doing, self.bucket.name) from err
        except (gexc.GoogleAPICallError, auth_exc.GoogleAuthError, *_TRANSPORT) as err:
            raise self._fail("read the retention settings of", self.bucket.name, err) from err
        if self.bucket.object_retention_mode != "Enabled":
            return (f"bucket {self.bucket.name!r} does not have object retention enabled, so "
                    "immutable_days cannot be enforced; create it with --enable-per-object-retention")
        return None

    def put(self, name: str, data: bytes | bytearray | memoryview, *, exclusive: bool = False) -> None:
        blob = self._blob(name)
        self._retention(blob)
        size: int | None = len(data)
        if len(data) > self.multipart_threshold:
            blob.chunk_size = max(_CHUNK, self.part_size // _CHUNK * _CHUNK)
            size = None  # an unknown size makes the SDK take the resumable path at any size
        try:
            blob.upload_from_file(io.BytesIO(data), size=size, content_type="application/octet-stream",
                                  if_generation_match=0 if exclusive else None, retry=None,
                                  timeout=TIMEOUT)
        except gexc.PreconditionFailed as err:
            raise ObjectExists(f"{name} already exists in {self.location}") from err
        except gexc.NotFound as err:
            if self._bucket_missing():
                raise _missing_bucket(f"write {name} in {self.location}", self.bucket.name) from err
            raise TransientStoreError(f"cannot write {name} in {self.location}: the upload session "
                                      "was lost (HTTP 404)") from err
        except (gexc.GoogleAPICallError, auth_exc.GoogleAuthError, *_TRANSPORT) as err:
            raise self._fail("write", name, err) from err

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            return b""
        end = None if length is None else offset + length - 1
        try:
            data: bytes = self._blob(name).download_as_bytes(
                start=offset or None, end=end, raw_download=True, retry=None, timeout=TIMEOUT)
            return data
        except gexc.NotFound as err:
            raise self._not_found("read", name) from err
        except (gexc.GoogleAPICallError, auth_exc.GoogleAuthError, *_TRANSPORT) as err:
            raise self._fail("read", name, err) from err

    def exists(self, name: str) -> bool:
        try:
            self._blob(name).reload(projection="noAcl", retry=None, timeout=TIMEOUT)
            return True
        except gexc.NotFound as err:
            failure = self._not_found("look up", name)
            if isinstance(failure, ObjectNotFound):
                return False
            raise failure from err
        except (gexc.GoogleAPICallError, auth_exc.GoogleAuthError, *_TRANSPORT) as err:
            raise self._fail("look up", name, err) from err

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        try:
            for blob in self.client.list_blobs(self.bucket, prefix=self.prefix + prefix,
                                               page_size=self.list_page_size,
                                               fields="items(name,size,updated),nextPageToken",
                                               retry=None, timeout=TIMEOUT):
                modified = blob.updated.timestamp() if blob.updated else None
                yield ObjectInfo(blob.name[len(self.prefix):], int(blob.size or 0), modified)
        except gexc.NotFound as err:
            raise _missing_bucket(f"list {prefix or 'objects'} in {self.location}",
                                  self.bucket.name) from err
        except (gexc.GoogleAPICallError, auth_exc.GoogleAuthError, *_TRANSPORT) as err:
            raise self._fail("list", prefix or "objects", err) from err

    def delete(self, name: str) -> None:
        try:
            self._blob(name).delete(retry=None, timeout=TIMEOUT)
        except gexc.NotFound:
            return  # already gone: deletes are retried, so this is success
        except gexc.Forbidden as err:
            if _is_retention(err):
                raise ObjectLocked(f"{name} in {self.location} is under retention or a hold") from err
            raise self._fail("delete", name, err) from err
        except (gexc.GoogleAPICallError, auth_exc.GoogleAuthError, *_TRANSPORT) as err:
            raise self._fail("delete", name, err) from err


def _reasons(err: Exception) -> set[str]:
    return {str(e.get("reason", "")) for e in getattr(err, "errors", None) or [] if isinstance(e, dict)}


def _is_retention(err: Exception) -> bool:
    message = str(getattr(err, "message", err)).lower()
    return "retention" in message or "hold" in message


def _missing_bucket(doing: str, bucket: str) -> StoreError:
    return StoreError(f"cannot {doing}: bucket {bucket!r} does not exist",
                      hint="create it (gcloud storage buckets create gs://BUCKET) or fix the target URL")


def gcs_error(err: Exception, doing: str, bucket: str, endpoint: str | None = None) -> StoreError:
    """One operator sentence for a GCS failure, typed so the retry wrapper knows what to retry."""
    if isinstance(err, auth_exc.DefaultCredentialsError):
        return AccessDenied(f"cannot {doing}: no Google Cloud credentials found",
                            hint="set GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth application-default "
                                 "login`, or run with a workload identity")
    if isinstance(err, auth_exc.RefreshError):
        return AccessDenied(f"cannot {doing}: the Google Cloud credentials were refused ({err})",
                            hint="renew or replace the credentials")
    if isinstance(err, _TRANSPORT):
        where = f" {endpoint}" if endpoint else ""
        return TransientStoreError(f"cannot {doing}: the endpoint{where} is unreachable or the connection "
                                   f"broke ({type(err).__name__})",
                                   hint="check the network and the target's endpoint")
    code, reasons = getattr(err, "code", None), _reasons(err)
    if code == 507 or reasons & _QUOTA:
        return StoreFull(f"cannot {doing}: the store refused for lack of space or quota (HTTP {code})")
    if code in (408, 429) or reasons & _RATE_LIMITED or (isinstance(code, int) and code >= 500):
        return TransientStoreError(f"cannot {doing}: HTTP {code} (temporary)")
    if code in (401, 403):
        return AccessDenied(f"cannot {doing}: access denied (HTTP {code})",
                            hint="check the credentials are valid and not expired, and that their role "
                                 "allows this action on the bucket")
    if code == 404:
        return _missing_bucket(doing, bucket)
    message = (getattr(err, "message", None) or str(err)).strip()
    return StoreError(f"cannot {doing}: {message.splitlines()[0] if message else type(err).__name__}")


def client_for(target: StoreConfig) -> Any:
    """A client for the target; ``endpoint`` overrides the API endpoint (emulators, private access)."""
    options = {"api_endpoint": target.endpoint} if target.endpoint else None
    try:
        client = storage.Client(client_options=options)
    except auth_exc.GoogleAuthError as err:
        raise gcs_error(err, f"open {target.url}", target.url) from err
    # SDK 3.x fetches bucket metadata in background threads, with their own retries, only to
    # label tracing spans; that is traffic drorch neither needs nor controls, so it is off.
    if getattr(client, "_bucket_metadata_cache", None) is not None:
        client._bucket_metadata_cache = None
    return client


def open_store(target: StoreConfig) -> GcsStore:
    bucket, prefix = target.host, target.path
    return GcsStore(client_for(target), bucket, prefix, lock_days=target.immutable_days,
                    lock_mode=target.object_lock_mode)
