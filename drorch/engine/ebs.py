"""Exporting an image mirror's snapshot to a block-level cloud target (today: an EBS snapshot).

The Python API behind ``drorch export ebs``; a runbook ``script`` step or an
operator calls it after ``apply`` so that the runbook's ``launch`` step finds a
current EBS snapshot tagged ``drorch:mirror=MIRROR``. The AWS SDK is imported
only when an export runs.
"""

from __future__ import annotations

from typing import Any

from drorch import registry
from drorch.engine.connect import choose_snapshot
from drorch.policy import Policy
from drorch.ports.ebs import SourceSnapshot
from drorch.ports.errors import UsageError
from drorch.repository.lock import RepositoryLock
from drorch.restore.blocks import ImageBlocks, export_manifests
from drorch.restore.image import image_node
from drorch.secrets import KeySource


def export_ebs(policy: Policy, keys: KeySource, mirror: str, *, snapshot: str = "latest",
               target: str | None = None, region: str | None = None, session: Any = None) -> Any:
    """Make ``snapshot`` of image mirror ``mirror`` a completed, tagged EBS snapshot; idempotent.

    ``region`` defaults to the region of the policy's AWS recovery that boots this
    mirror, then to the AWS configuration (``AWS_DEFAULT_REGION``).
    """
    repo, found = choose_snapshot(policy, keys, snapshot, mirror=mirror, target=target)
    repo.load_index()
    with RepositoryLock(repo, exclusive=False).acquire():
        node = image_node(repo, found)
        if node is None:
            raise UsageError(f"mirror {mirror!r} holds directory snapshots; only image and volume mirrors "
                             "export as EBS snapshots")
        region = region or _recovery_region(policy, mirror)
        exporter = registry.load("ebs", "aws")(region, session=session)
        image = ImageBlocks(repo, node, exporter.block_size)
        return exporter.export(image, SourceSnapshot(found.id, list(found.paths)), mirror,
                               export_manifests("ebs", exporter.region))


def _recovery_region(policy: Policy, mirror: str) -> str | None:
    for recovery in policy.recovery:
        if recovery.from_ == mirror and recovery.provider == "aws" and recovery.instance.region:
            return recovery.instance.region
    return None
