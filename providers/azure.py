"""``az://container/prefix`` targets: Azure Blob Storage.

Credentials come from the environment, never the policy, in this order:
``AZURE_STORAGE_CONNECTION_STRING``, then ``AZURE_STORAGE_ACCOUNT`` with
``AZURE_STORAGE_KEY`` (shared key). The account URL is the target's ``endpoint``
when set (Azurite, sovereign clouds, private endpoints), else the connection
string's ``BlobEndpoint``, else ``https://ACCOUNT.blob.core.windows.net``.
Entra ID (``DefaultAzureCredential``: managed identity, service principal, az
CLI) needs the ``azure-identity`` package, which the ``[azure]`` extra does not
install yet, so it is not offered. ``AZURE_STORAGE_API_VERSION`` pins the REST
API version (for emulators or Azure Stack that lag behind the SDK).

The SDK's own retries are off (``retry_total=0``): ``drorch.storage.retry`` retries what
is transient, once, in one place. Create-if-absent is ``If-None-Match: *``
(``MatchConditions.IfMissing``), evaluated atomically by the service, also on
the final commit of a staged upload. Objects above ``multipart_threshold`` are
staged as blocks of ``part_size`` and committed in one call, so a reader never
sees a partial blob; uncommitted blocks of a failed upload are discarded by the
service after a week.

``immutable_days`` sets a version-level immutability policy on every blob
written (``Locked`` for ``object_lock_mode: COMPLIANCE``, ``Unlocked`` for
``GOVERNANCE``), expiring now + ``immutable_days``. The container (or account)
must have version-level immutability support enabled, else the service refuses
the write. A delete refused by the policy is reported as ``ObjectLocked`` so
prune keeps the blob and says why.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobBlock, BlobServiceClient, ContentSettings, ImmutabilityPolicy

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

CONNECT_TIMEOUT = 10
READ_TIMEOUT = 120
_OCTETS = ContentSettings(content_type="application/octet-stream")
_EXISTS = {"BlobAlreadyExists", "ConditionNotMet"}
_LOCKED = {"BlobImmutableDueToPolicy", "BlobImmutableDueToLegalHold", "ContainerImmutableDueToPolicy"}
_TRANSIENT = {"ServerBusy", "OperationTimedOut", "InternalError", "ServiceUnavailable"}
_FULL = {"AccountLimitExceeded", "InsufficientAccountCapacity"}


class AzureBlobStore:
    multipart_threshold = 64 * 1024 * 1024  # above this: staged blocks, one commit
    part_size = 16 * 1024 * 1024  # block size; the service allows up to 4000 MiB
    list_page_size = 1000

    def __init__(self, service: Any, container: str, prefix: str, *, lock_days: int | None = None,
                 lock_mode: str = "COMPLIANCE") -> None:
        self.service = service
        self.container = service.get_container_client(container)
        self.container_name = container
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.lock_days = lock_days
        self.lock_mode = "Locked" if lock_mode == "COMPLIANCE" else "Unlocked"

    @property
    def location(self) -> str:
        return f"az://{self.container_name}/{self.prefix}".rstrip("/")

    def _blob(self, name: str) -> Any:
        return self.container.get_blob_client(self.prefix + name)

    def _fail(self, action: str, name: str, err: Exception) -> StoreError:
        return azure_error(err, f"{action} {name} in {self.location}", self.container_name,
                           getattr(self.service, "url", None))

    def _write_args(self, exclusive: bool) -> dict[str, Any]:
        args: dict[str, Any] = {"content_settings": _OCTETS}
        if exclusive:
            args["match_condition"] = MatchConditions.IfMissing
        if self.lock_days:
            until = dt.datetime.now(dt.UTC) + dt.timedelta(days=self.lock_days)
            args["immutability_policy"] = ImmutabilityPolicy(expiry_time=until, policy_mode=self.lock_mode)
        return args

    def immutability_problem(self, days: int) -> str | None:
        """Immutability policies on blobs need version-level immutability on the container."""
        try:
            props = self.container.get_container_properties()
        except AzureError as err:
            raise self._fail("read the immutability settings of", self.container_name, err) from err
        if not props.immutable_storage_with_versioning_enabled:
            return (f"container {self.container_name!r} does not have version-level immutability "
                    "enabled, so immutable_days cannot be enforced; enable it on the container or account")
        return None

    def put(self, name: str, data: bytes | bytearray | memoryview, *, exclusive: bool = False) -> None:
        blob = self._blob(name)
        try:
            if len(data) > self.multipart_threshold:
                self._put_staged(blob, memoryview(data), self._write_args(exclusive))
            else:
                blob.upload_blob(bytes(data), length=len(data), overwrite=not exclusive,
                                 max_concurrency=1, **self._write_args(exclusive))
        except (ResourceExistsError, ResourceModifiedError) as err:
            if exclusive and _code(err) in _EXISTS:
                raise ObjectExists(f"{name} already exists in {self.location}") from err
            raise self._fail("write", name, err) from err
        except AzureError as err:
            raise self._fail("write", name, err) from err

    def _put_staged(self, blob: Any, data: memoryview, args: dict[str, Any]) -> None:
        """Stage blocks, then commit them at once; block IDs are unique per upload (same length)."""
        upload = uuid.uuid4().hex
        blocks = []
        for number, start in enumerate(range(0, len(data), self.part_size)):
            block_id = base64.b64encode(f"{upload}{number:08d}".encode()).decode()
            chunk = bytes(data[start:start + self.part_size])
            blob.stage_block(block_id, chunk, length=len(chunk))
            blocks.append(BlobBlock(block_id=block_id))
        blob.commit_block_list(blocks, **args)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            return b""
        try:
            stream = self._blob(name).download_blob(
                offset=offset if offset or length is not None else None, length=length, max_concurrency=1)
            data: bytes = stream.readall()
            return data
        except AzureError as err:
            if _code(err) == "BlobNotFound":
                raise ObjectNotFound(f"{name} does not exist in {self.location}") from err
            raise self._fail("read", name, err) from err

    def exists(self, name: str) -> bool:
        try:
            self._blob(name).get_blob_properties()
            return True
        except AzureError as err:
            if _code(err) == "BlobNotFound":
                return False
            raise self._fail("look up", name, err) from err

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        try:
            for item in self.container.list_blobs(name_starts_with=self.prefix + prefix,
                                                  results_per_page=self.list_page_size):
                modified = item.last_modified.timestamp() if item.last_modified else None
                yield ObjectInfo(item.name[len(self.prefix):], int(item.size or 0), modified)
        except AzureError as err:
            raise self._fail("list", prefix or "objects", err) from err

    def delete(self, name: str) -> None:
        try:
            self._blob(name).delete_blob()
        except AzureError as err:
            code = _code(err)
            if code in {"BlobNotFound", "ContainerNotFound"}:
                return  # already gone: deletes are retried, so this is success
            if code in _LOCKED:
                raise ObjectLocked(f"{name} in {self.location} is under an immutability policy "
                                   "or legal hold") from err
            raise self._fail("delete", name, err) from err


def _code(err: Exception) -> str:
    """The service's error code (``BlobNotFound``…), from the error or the response header."""
    code = getattr(err, "error_code", None)
    if code is None:
        response = getattr(err, "response", None)
        headers = getattr(response, "headers", None) or {}
        code = headers.get("x-ms-error-code")
    return str(getattr(code, "value", code) or "")


def azure_error(err: Exception, doing: str, container: str, endpoint: str | None = None) -> StoreError:
    """One operator sentence for an Azure failure, typed so the retry wrapper knows what to retry."""
    code = _code(err)
    status = getattr(err, "status_code", None)
    if isinstance(err, ServiceRequestError | ServiceResponseError) and status is None:
        where = f" {endpoint}" if endpoint else ""
        return TransientStoreError(f"cannot {doing}: the endpoint{where} is unreachable or the "
                                   f"connection broke ({type(err).__name__})",
                                   hint="check the network and the target's endpoint")
    if code == "ContainerNotFound":
        return StoreError(f"cannot {doing}: container {container!r} does not exist",
                          hint="create it (az storage container create) or fix the target URL")
    if code in _FULL or status == 507:
        return StoreFull(f"cannot {doing}: the store refused for lack of space or quota ({code or status})")
    if code in _TRANSIENT or status in (408, 429) or (isinstance(status, int) and status >= 500):
        return TransientStoreError(f"cannot {doing}: {code or f'HTTP {status}'} (temporary)")
    if status in (401, 403):
        return AccessDenied(f"cannot {doing}: access denied ({code or status})",
                            hint="check the account key or connection string is current and that it "
                                 "may write to the container")
    if isinstance(err, HttpResponseError):
        return StoreError(f"cannot {doing}: {code or f'HTTP {status}'}")
    return StoreError(f"cannot {doing}: {str(err).splitlines()[0] if str(err) else type(err).__name__}")


def _connection_settings(text: str) -> dict[str, str]:
    pairs = (part.partition("=") for part in text.split(";") if part.strip())
    return {key.strip(): value.strip() for key, _, value in pairs}


def service_for(target: StoreConfig) -> Any:
    """The service client for the target, from the environment (see the module docstring)."""
    options: dict[str, Any] = {"retry_total": 0, "connection_timeout": CONNECT_TIMEOUT,
                               "read_timeout": READ_TIMEOUT}
    if os.environ.get("AZURE_STORAGE_API_VERSION"):
        options["api_version"] = os.environ["AZURE_STORAGE_API_VERSION"]
    connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    try:
        if connection and not target.endpoint:
            return BlobServiceClient.from_connection_string(connection, **options)
        settings = _connection_settings(connection) if connection else {}
        account = settings.get("AccountName") or os.environ.get("AZURE_STORAGE_ACCOUNT")
        key = settings.get("AccountKey") or os.environ.get("AZURE_STORAGE_KEY")
        sas = settings.get("SharedAccessSignature")
        if not account or not (key or sas):
            raise AccessDenied(f"cannot open {target.url}: no Azure Storage credentials found",
                               hint="set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and "
                                    "AZURE_STORAGE_KEY")
        url = (target.endpoint or settings.get("BlobEndpoint")
               or f"https://{account}.blob.{settings.get('EndpointSuffix', 'core.windows.net')}")
        credential: Any = {"account_name": account, "account_key": key} if key else sas
        return BlobServiceClient(account_url=url, credential=credential, **options)
    except ValueError as err:
        raise StoreError(f"cannot open {target.url}: the Azure Storage settings are malformed ({err})",
                         hint="check AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY") from err


def open_store(target: StoreConfig) -> AzureBlobStore:
    container, prefix = target.host, target.path
    return AzureBlobStore(service_for(target), container, prefix, lock_days=target.immutable_days,
                          lock_mode=target.object_lock_mode)
