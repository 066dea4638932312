"""What the AWS runbook adapters share: sessions, clients, and errors in operator words.

Clients use botocore's standard retry mode (throttling and 5xx are retried
there, a few times, quickly) and short connect/read timeouts, so one call
never eats a step's deadline. ``AWS_ENDPOINT_URL`` (and the per-service
variants) point every client at an emulator such as moto server.

``translate`` turns a botocore error into a ``StepFailed`` that says what was
being done, where, and how to fix it; errors a retry cannot fix (permission
denied, quota reached, no such image/zone/subnet) are ``permanent`` so the
engine fails fast instead of spending the RTO on retries.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from drorch.ports.errors import StepFailed

__all__ = ["client", "make_session", "region_of", "translate"]

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)

_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure",
           "InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken",
           "ExpiredTokenException", "SignatureDoesNotMatch", "OptInRequired"}
_LIMITS = {"InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded",
           "VolumeLimitExceeded", "SnapshotLimitExceeded", "ResourceLimitExceeded",
           "LimitExceededException", "TooManyHostedZones"}
_TRANSIENT = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable",
              "InternalError", "InternalFailure", "Unavailable", "InsufficientInstanceCapacity",
              "PriorRequestNotComplete", "IncorrectState"}


def make_session(session: boto3.Session | None = None, region: str | None = None) -> boto3.Session:
    return session or boto3.Session(region_name=region)


def region_of(session: boto3.Session, region: str | None) -> str:
    chosen = region or session.region_name
    if not chosen:
        raise StepFailed("no AWS region is configured", permanent=True,
                         hint="set instance.region in the policy's recovery, or AWS_DEFAULT_REGION")
    return chosen


def client(session: boto3.Session, service: str, region: str | None = None) -> Any:
    try:
        return session.client(service, region_name=region, config=_CONFIG)  # type: ignore[call-overload]
    except NoRegionError:
        raise StepFailed(f"no AWS region for {service}", permanent=True,
                         hint="set AWS_DEFAULT_REGION or the recovery's instance.region") from None


def translate(error: Exception, doing: str, *, service: str, where: str = "") -> StepFailed:
    """One sentence for the operator: what failed, where, why, and the fix."""
    place = f" in {where}" if where else ""
    if isinstance(error, NoCredentialsError):
        return StepFailed(f"no AWS credentials to {doing}", permanent=True,
                          hint="configure a profile, role or AWS_ACCESS_KEY_ID for the DR account")
    if isinstance(error, EndpointConnectionError):
        return StepFailed(f"cannot reach AWS to {doing}{place}: {error}")
    if not isinstance(error, ClientError):
        if isinstance(error, BotoCoreError):
            return StepFailed(f"AWS call failed to {doing}{place}: {error}")
        raise error
    code = error.response.get("Error", {}).get("Code", "Unknown")
    message = error.response.get("Error", {}).get("Message", "")
    action = f"{service}:{error.operation_name}"
    if code in _DENIED:
        return StepFailed(f"AWS denied permission to {doing}{place}: the credentials in use may not "
                          f"call {action}", permanent=True,
                          hint=f"grant {action} to the DR role (terraform/aws has the least-privilege "
                               "policy)")
    if code in _LIMITS:
        return StepFailed(f"AWS quota reached while trying to {doing}{place} ({code}: {message})",
                          permanent=True,
                          hint="request a higher quota in Service Quotas, or stop unused instances")
    if code in _TRANSIENT:
        return StepFailed(f"AWS could not {doing}{place} right now ({code}: {message})")
    return StepFailed(f"AWS refused to {doing}{place} ({code}: {message})",
                      permanent=code.endswith(("NotFound", "Malformed")) or code.startswith("Invalid")
                      or code.startswith("NoSuch"))
