"""``s3://bucket/prefix`` targets: Amazon S3 and S3-compatible stores (``endpoint``).

Credentials come from boto3's standard chain (environment, profile, instance or
workload identity); the policy never holds them. botocore's own retries are
off: ``drorch.storage.retry`` retries what is transient, once, in one place. Objects
above ``MULTIPART_THRESHOLD`` go up in parts. With ``immutable_days`` every
object is written with an object-lock retention date, and a delete refused by
the lock is reported as ``ObjectLocked`` so prune can keep it and say why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

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

MULTIPART_THRESHOLD = 64 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled"}
_TRANSIENT = {"SlowDown", "503", "500", "502", "504", "InternalError", "ServiceUnavailable",
              "RequestTimeout", "Throttling", "ThrottlingException", "RequestTimeTooSkewed"}
_WRONG_REGION = {"PermanentRedirect", "301", "AuthorizationHeaderMalformed",
                 "IllegalLocationConstraintException"}
_FULL = {"QuotaExceeded", "EntityTooLarge", "InsufficientStorage", "507"}


class S3Store:
    def __init__(self, client: Any, bucket: str, prefix: str, *, lock_days: int | None = None,
                 lock_mode: str = "COMPLIANCE") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.lock_days = lock_days
        self.lock_mode = lock_mode
        self.multipart_threshold = MULTIPART_THRESHOLD
        self.part_size = PART_SIZE

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _fail(self, action: str, name: str, err: Exception) -> StoreError:
        return s3_error(err, f"{action} {name} in {self.location}", self.bucket)

    def _lock_args(self) -> dict[str, Any]:
        if not self.lock_days:
            return {}
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=self.lock_days)
        return {"ObjectLockMode": self.lock_mode, "ObjectLockRetainUntilDate": until}

    def put(self, name: str, data: bytes | bytearray | memoryview, *, exclusive: bool = False) -> None:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(name), **self._lock_args()}
        if exclusive:
            args["IfNoneMatch"] = "*"
        try:
            if len(data) > self.multipart_threshold:
                self._put_multipart(args, memoryview(data))
            else:
                self.client.put_object(Body=bytes(data), **args)
        except (ClientError, BotoCoreError) as err:
            if _code(err) in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                raise ObjectExists(f"{name} already exists in {self.location}") from err
            raise self._fail("write", name, err) from err

    def _put_multipart(self, args: dict[str, Any], data: memoryview) -> None:
        upload = self.client.create_multipart_upload(
            **{k: v for k, v in args.items() if k != "IfNoneMatch"})
        upload_id = upload["UploadId"]
        try:
            parts = []
            size = self.part_size
            for number, start in enumerate(range(0, len(data), size), start=1):
                part = self.client.upload_part(Bucket=self.bucket, Key=args["Key"], UploadId=upload_id,
                                               PartNumber=number, Body=bytes(data[start:start + size]))
                parts.append({"PartNumber": number, "ETag": part["ETag"]})
            extra = {"IfNoneMatch": "*"} if "IfNoneMatch" in args else {}
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=args["Key"], UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts}, **extra)
        except BaseException:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=args["Key"], UploadId=upload_id)
            raise

    def immutability_problem(self, days: int) -> str | None:
        try:
            reply = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as err:
            if _code(err) == "ObjectLockConfigurationNotFoundError":
                return (f"bucket {self.bucket!r} has no object lock, so immutable_days cannot be "
                        "enforced; create the bucket with object lock enabled (terraform/aws does)")
            raise self._fail("read the object lock configuration of", self.bucket, err) from err
        if reply.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            return f"bucket {self.bucket!r} has object lock disabled; enable it for immutable_days"
        return None

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(name)}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            if length == 0:
                return b""
            args["Range"] = f"bytes={offset}-{end}"
        try:
            return self.client.get_object(**args)["Body"].read()  # type: ignore[no-any-return]
        except (ClientError, BotoCoreError) as err:
            if _code(err) in _NOT_FOUND:
                raise ObjectNotFound(f"{name} does not exist in {self.location}") from err
            raise self._fail("read", name, err) from err

    def exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(name))
            return True
        except (ClientError, BotoCoreError) as err:
            if _code(err) in _NOT_FOUND:
                return False
            raise self._fail("look up", name, err) from err

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"][len(self.prefix):], item["Size"],
                                     item["LastModified"].timestamp())
        except (ClientError, BotoCoreError) as err:
            raise self._fail("list", prefix or "objects", err) from err

    def delete(self, name: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(name))
        except (ClientError, BotoCoreError) as err:
            if _code(err) in _DENIED and self.lock_days:
                raise ObjectLocked(f"{name} in {self.location} is under object-lock retention") from err
            raise self._fail("delete", name, err) from err


def _code(err: Exception) -> str:
    if isinstance(err, ClientError):
        return str(err.response.get("Error", {}).get("Code", "")) or str(
            err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return ""


def s3_error(err: Exception, doing: str, bucket: str) -> StoreError:
    """One operator sentence for an S3 failure, typed so the retry wrapper knows what to retry."""
    code = _code(err)
    if isinstance(err, NoCredentialsError):
        return AccessDenied(f"cannot {doing}: no AWS credentials found",
                            hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run on "
                                 "an instance with a role")
    if isinstance(err, EndpointConnectionError):
        return TransientStoreError(f"cannot {doing}: the endpoint is unreachable ({err})",
                                   hint="check the network and the target's endpoint")
    if isinstance(err, (ConnectionClosedError, ReadTimeoutError, ConnectTimeoutError)):
        return TransientStoreError(f"cannot {doing}: the connection to the endpoint broke "
                                   f"({type(err).__name__})", hint="check the network; the run resumes")
    if code == "NoSuchBucket":
        return StoreError(f"cannot {doing}: bucket {bucket!r} does not exist",
                          hint="create it (see terraform/aws) or fix the target URL")
    if code in _WRONG_REGION:
        return StoreError(f"cannot {doing}: bucket {bucket!r} is in another region",
                          hint="set the target's region to the bucket's region")
    if code in _DENIED:
        return AccessDenied(f"cannot {doing}: access denied ({code})",
                            hint="check the credentials are valid and not expired, and that their policy "
                                 "allows this action on the bucket")
    if code in _FULL:
        return StoreFull(f"cannot {doing}: the store refused for lack of space or quota ({code})")
    if code in _TRANSIENT or isinstance(err, BotoCoreError):
        return TransientStoreError(f"cannot {doing}: {code or type(err).__name__} (temporary)")
    return StoreError(f"cannot {doing}: {code or err}")


def client_for(target: StoreConfig) -> Any:
    session = boto3.session.Session(region_name=target.region)
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=16,
                    s3={"addressing_style": "path"} if target.endpoint else None,
                    connect_timeout=10, read_timeout=60)
    return session.client("s3", endpoint_url=target.endpoint, config=config)


def open_store(target: StoreConfig) -> S3Store:
    bucket, prefix = target.host, target.path
    return S3Store(client_for(target), bucket, prefix, lock_days=target.immutable_days,
                   lock_mode=target.object_lock_mode)
