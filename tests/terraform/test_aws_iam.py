"""The AWS module grants each identity exactly what drorch's AWS adapters call, and no more.

Calls are collected statically with ``ast`` from every module in providers/ that
imports boto3: the services come from the string literals given to ``client(...)``
(``session.client("s3")``, ``boto3.client("kms")``, ``client(session, "ec2", ...)``),
and an operation is any attribute of that service's botocore model that the module
names (``self.client.put_object(...)``, ``self._call(..., self.ec2.run_instances)``)
or any ``get_paginator("list_objects_v2")``. Each (service, operation) maps to IAM
actions through the explicit table below; an operation missing from the table fails
the test, so a new boto3 call cannot ship without its permission.

Per identity: the agent's policy holds the actions of every adapter but the drill
sandbox; the failover policy only widens the scopes of those actions; the drill
policy holds the actions of ``aws_sandbox.py`` plus the runbook calls a sandboxed
drill makes outside the agent's scopes (``DRILL_RUNBOOK_ACTIONS``), and the drill
role is the agent's policy plus the drill policy.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from .hcl import ROOT, TERRAFORM, parse_module, typed_blocks

botocore_session = pytest.importorskip("botocore.session", reason="botocore is needed to list operations")
from botocore import xform_name  # noqa: E402

PROVIDERS = ROOT / "providers"

# Modules that import boto3 but never talk to AWS on the agent's behalf (none: the fake AWS of
# `drorch test --mock aws` lives in drorch/testing/aws.py, not among the adapters).
NOT_ADAPTERS: dict[str, str] = {}
FAKE_AWS = ROOT / "drorch" / "testing" / "aws.py"

# Modules whose calls only the drill role makes: they are granted by the drill policy, not the agent's.
DRILL_ADAPTERS = {
    "aws_sandbox.py": "creates, sweeps and removes a drill's isolated network (drorch.ports.sandbox)",
}

# Runbook calls (agent adapters) that a sandboxed drill makes outside the agent's scopes.
DRILL_RUNBOOK_ACTIONS = {
    "ec2:RunInstances": "launch steps go into the sandbox subnet and security group, not the drill VPC "
                        "of network.tf the agent may launch into",
}

# (service, boto3 operation) -> the IAM actions it needs.
IAM_ACTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "put_object"): ("s3:PutObject",),
    ("s3", "create_multipart_upload"): ("s3:PutObject",),
    ("s3", "upload_part"): ("s3:PutObject",),
    ("s3", "complete_multipart_upload"): ("s3:PutObject",),
    ("s3", "abort_multipart_upload"): ("s3:AbortMultipartUpload",),
    ("s3", "get_object"): ("s3:GetObject",),
    ("s3", "head_object"): ("s3:GetObject",),
    ("s3", "list_objects_v2"): ("s3:ListBucket",),
    ("s3", "head_bucket"): ("s3:ListBucket",),  # plan: does the bucket exist (HeadBucket needs ListBucket)
    ("s3", "delete_object"): ("s3:DeleteObject",),
    ("s3", "get_object_lock_configuration"): ("s3:GetBucketObjectLockConfiguration",),
    ("kms", "generate_data_key"): ("kms:GenerateDataKey",),
    ("kms", "decrypt"): ("kms:Decrypt",),
    ("ec2", "run_instances"): ("ec2:RunInstances", "iam:PassRole"),  # the recovery VM's profile
    ("ssm", "get_parameter"): ("ssm:GetParameter",),
    ("ec2", "stop_instances"): ("ec2:StopInstances",),
    ("ec2", "start_instances"): ("ec2:StartInstances",),
    ("ec2", "terminate_instances"): ("ec2:TerminateInstances",),
    ("ec2", "describe_instances"): ("ec2:DescribeInstances",),
    ("ec2", "describe_images"): ("ec2:DescribeImages",),
    ("ec2", "describe_subnets"): ("ec2:DescribeSubnets",),
    ("ec2", "describe_security_groups"): ("ec2:DescribeSecurityGroups",),
    ("ec2", "describe_snapshots"): ("ec2:DescribeSnapshots",),
    ("ec2", "describe_volumes"): ("ec2:DescribeVolumes",),
    ("ec2", "copy_snapshot"): ("ec2:CopySnapshot",),
    ("ebs", "start_snapshot"): ("ebs:StartSnapshot",),
    ("ebs", "put_snapshot_block"): ("ebs:PutSnapshotBlock",),
    ("ebs", "complete_snapshot"): ("ebs:CompleteSnapshot",),
    ("ec2", "describe_vpcs"): ("ec2:DescribeVpcs",),
    ("ec2", "create_vpc"): ("ec2:CreateVpc",),
    ("ec2", "create_subnet"): ("ec2:CreateSubnet",),
    ("ec2", "create_security_group"): ("ec2:CreateSecurityGroup",),
    ("ec2", "authorize_security_group_ingress"): ("ec2:AuthorizeSecurityGroupIngress",),
    ("ec2", "authorize_security_group_egress"): ("ec2:AuthorizeSecurityGroupEgress",),
    ("ec2", "revoke_security_group_egress"): ("ec2:RevokeSecurityGroupEgress",),
    ("ec2", "create_tags"): ("ec2:CreateTags",),
    ("ec2", "delete_snapshot"): ("ec2:DeleteSnapshot",),
    ("ec2", "delete_security_group"): ("ec2:DeleteSecurityGroup",),
    ("ec2", "delete_subnet"): ("ec2:DeleteSubnet",),
    ("ec2", "delete_vpc"): ("ec2:DeleteVpc",),
    ("route53", "list_hosted_zones_by_name"): ("route53:ListHostedZonesByName",),
    ("route53", "list_resource_record_sets"): ("route53:ListResourceRecordSets",),
    ("route53", "change_resource_record_sets"): ("route53:ChangeResourceRecordSets",),
    ("route53", "get_change"): ("route53:GetChange",),
    ("sns", "publish"): ("sns:Publish",),
    ("sns", "get_topic_attributes"): ("sns:GetTopicAttributes",),
}

# Needed by those calls' arguments rather than by the calls themselves (listed in the README).
DOCUMENTED_EXTRAS = {
    "s3:PutObjectRetention": "PutObject/CreateMultipartUpload with ObjectLockMode and "
                             "ObjectLockRetainUntilDate",
    "ec2:CreateTags": "RunInstances and CopySnapshot with TagSpecifications",
}

# Actions AWS cannot scope to a resource: the only ones allowed on Resource "*".
UNSCOPED = {"ec2:DescribeImages", "ec2:DescribeInstances", "ec2:DescribeSecurityGroups",
            "ec2:DescribeSnapshots", "ec2:DescribeSubnets", "ec2:DescribeVolumes", "ec2:DescribeVpcs",
            "route53:ListHostedZonesByName"}

# EC2 write statements that carry no tag condition, and why (each is in the README too).
UNCONDITIONED_WRITES = {
    "LaunchFromImagesAndSnapshots": "images, data snapshots and key pairs are only read by a launch",
    "LaunchNetworkInterfaces": "a launch creates the interface untagged, in a subnet it must be allowed",
}


@cache
def operations(service: str) -> frozenset[str]:
    model = botocore_session.get_session().get_service_model(service)
    return frozenset(xform_name(name) for name in model.operation_names)


@cache
def service_names() -> frozenset[str]:
    return frozenset(botocore_session.get_session().get_available_services())


def _imports_boto3(tree: ast.AST) -> bool:
    return any(isinstance(node, ast.Import) and any(a.name == "boto3" for a in node.names)
               or isinstance(node, ast.ImportFrom) and (node.module or "").startswith("boto3")
               for node in ast.walk(tree))


def _callee(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")


def calls_in(path: Path) -> set[tuple[str, str]]:
    """(service, operation) pairs one module makes through boto3 clients."""
    tree = ast.parse(path.read_text(), filename=str(path))
    literal_calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    services = {arg.value for node in literal_calls if _callee(node) == "client" for arg in node.args
                if isinstance(arg, ast.Constant) and arg.value in service_names()}
    named = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    named |= {arg.value for node in literal_calls if _callee(node) == "get_paginator" for arg in node.args
              if isinstance(arg, ast.Constant) and isinstance(arg.value, str)}
    return {(service, op) for service in services for op in named & operations(service)}


def adapter_modules() -> list[Path]:
    return sorted(p for p in PROVIDERS.glob("*.py")
                  if p.name not in NOT_ADAPTERS and _imports_boto3(ast.parse(p.read_text())))


@cache
def boto3_calls(*, only: frozenset[str] | None = None, skip: frozenset[str] = frozenset()
                ) -> frozenset[tuple[str, str]]:
    """Calls of the adapters (``only`` those file names, or all but ``skip``)."""
    return frozenset(call for path in adapter_modules()
                     if (only is None or path.name in only) and path.name not in skip
                     for call in calls_in(path))


def needed(calls: frozenset[tuple[str, str]]) -> set[str]:
    return {action for call in calls for action in IAM_ACTIONS[call]}


def agent_needs() -> set[str]:
    return needed(boto3_calls(skip=frozenset(DRILL_ADAPTERS))) | set(DOCUMENTED_EXTRAS)


def drill_needs() -> set[str]:
    return needed(boto3_calls(only=frozenset(DRILL_ADAPTERS))) | set(DRILL_RUNBOOK_ACTIONS)


# ------------------------------------------------------------------------ the policy documents


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Static and ``dynamic "statement"`` blocks of an aws_iam_policy_document."""
    found = list(document.get("statement", []))
    for dynamic in document.get("dynamic", []):
        for body in dynamic.get("statement", {}).get("content", []) if "statement" in dynamic else []:
            found.append(body)
    return found


def document(name: str) -> dict[str, Any]:
    return typed_blocks(parse_module("aws"), "data", "aws_iam_policy_document")[name]  # type: ignore[no-any-return]


def attached_policies(role: str) -> set[str]:
    """``aws_iam_policy.X`` names attached to ``aws_iam_role.<role>``."""
    attachments = typed_blocks(parse_module("aws"), "resource", "aws_iam_role_policy_attachment")
    return {re.sub(r"^\$\{aws_iam_policy\.(\w+)\.arn\}$", r"\1", body["policy_arn"])
            for body in attachments.values() if body["role"] == f"${{aws_iam_role.{role}.name}}"}


def local(name: str) -> Any:
    return next(block[name] for block in parse_module("aws")["locals"] if name in block)


def allowed_actions(name: str) -> set[str]:
    actions: set[str] = set()
    for statement in statements(document(name)):
        if statement.get("effect", "Allow") == "Allow":
            actions.update(statement["actions"])
    return actions


# ------------------------------------------------------------------------------------ tests


def test_the_collector_sees_the_adapters() -> None:
    names = {p.name for p in adapter_modules()}
    agent = {"s3.py", "aws_kms.py", "aws_compute.py", "aws_dns.py", "aws_notify.py"}
    assert agent | set(DRILL_ADAPTERS) <= names
    calls = boto3_calls()
    for expected in [("s3", "put_object"), ("s3", "list_objects_v2"), ("kms", "decrypt"),
                     ("ec2", "run_instances"), ("route53", "change_resource_record_sets"),
                     ("sns", "publish"), ("ec2", "create_vpc"), ("ec2", "delete_vpc")]:
        assert expected in calls, f"collector missed {expected}"


def test_excluded_modules_really_stay_in_moto() -> None:
    for name in NOT_ADAPTERS:
        assert "mock_aws" in (PROVIDERS / name).read_text(), f"{name} no longer looks like a moto-only module"
    assert "mock_aws" in FAKE_AWS.read_text(), "the fake AWS no longer looks like a moto-only module"
    assert not (PROVIDERS / "aws_mock.py").exists(), "the fake AWS belongs with the testing code"


def test_every_boto3_call_is_in_the_mapping_table() -> None:
    unmapped = sorted(boto3_calls() - set(IAM_ACTIONS))
    assert not unmapped, f"boto3 calls with no IAM mapping (add them to IAM_ACTIONS and iam.tf): {unmapped}"


def test_mapping_table_has_no_stale_rows() -> None:
    stale = sorted(set(IAM_ACTIONS) - boto3_calls())
    assert not stale, f"IAM_ACTIONS maps calls no adapter makes any more: {stale}"


def test_agent_gets_exactly_the_actions_drorch_calls() -> None:
    granted = allowed_actions("agent")
    assert granted - agent_needs() == set(), "granted but never called"
    assert agent_needs() <= granted, "called but not granted"
    print("agent actions:", ", ".join(sorted(granted)))


def test_failover_only_widens_scopes() -> None:
    assert allowed_actions("failover") <= agent_needs()


def test_drill_gets_exactly_the_sandbox_calls_and_the_sandboxed_launch() -> None:
    granted = allowed_actions("drill")
    assert granted - drill_needs() == set(), "granted but never called"
    assert drill_needs() <= granted, "called but not granted"
    print("drill actions:", ", ".join(sorted(granted)))


def test_drill_runbook_actions_only_widen_agent_scopes() -> None:
    assert set(DRILL_RUNBOOK_ACTIONS) <= agent_needs(), "a drill's runbook calls are the agent's adapters"


def test_each_role_holds_exactly_its_policies() -> None:
    assert attached_policies("agent") == {"agent"}
    assert attached_policies("failover") == {"agent", "failover"}
    assert attached_policies("drill") == {"agent", "drill"}


def test_drill_identity_is_documented() -> None:
    readme = (TERRAFORM / "aws" / "README.md").read_text()
    for action in allowed_actions("drill"):
        assert f"`{action}`" in readme, f"{action}: list it in the README's drill table"
    assert f"exactly these {len(allowed_actions('drill'))} actions" in readme
    assert f"exactly these {len(allowed_actions('agent'))} actions" in readme


def test_extras_are_documented_in_the_readme() -> None:
    readme = (TERRAFORM / "aws" / "README.md").read_text()
    for action in DOCUMENTED_EXTRAS:
        assert f"`{action}`" in readme, f"{action} is granted beyond the boto3 calls; say why in the README"


def test_wildcard_resources_only_for_unscopable_actions() -> None:
    for name in ("agent", "failover", "drill"):
        for statement in statements(document(name)):
            if statement.get("resources") == ["*"]:
                assert set(statement["actions"]) <= UNSCOPED, statement["sid"]
            assert not any("*" in action for action in statement["actions"]), statement["sid"]


def test_deletes_only_lock_files_where_object_lock_applies() -> None:
    agent = statements(document("agent"))
    deletes = [str(s["resources"]) for s in agent if "s3:DeleteObject" in s["actions"]]
    assert len(deletes) == 2, deletes
    assert any("lock_file_arns" in r for r in deletes), "lock files must always be deletable"
    assert any("unlocked_repo_arns" in r for r in deletes), "prune needs delete where no lock applies"
    assert not any("locked_repo_arns" in r.replace("unlocked_repo_arns", "") for r in deletes), \
        "delete granted on object-locked data"
    main = (TERRAFORM / "aws" / "main.tf").read_text()
    assert re.search(r'lock_file_arns\s*=.*\$\{r\.path\}locks/\*"', main)
    assert re.search(r"unlocked_repo_arns\s*=.*if !r\.locked\]", main)


def test_ec2_writes_are_conditioned_on_drorch_tags() -> None:
    for statement in statements(document("agent")):
        actions = statement["actions"]
        writes = {a for a in actions if a.startswith("ec2:") and not a.startswith("ec2:Describe")}
        if not writes or statement["sid"] in UNCONDITIONED_WRITES:
            continue
        conditions = statement.get("condition", [])
        assert conditions, f"{statement['sid']}: EC2 writes without a condition"


def test_drill_writes_are_conditioned_on_the_sandbox_tag() -> None:
    """Created only with drorch:sandbox=true, changed and removed only when it carries it."""
    from drorch.drill.sandbox import SandboxBackends
    from drorch.ports.sandbox import SANDBOX_TAG

    tags = SandboxBackends(None, drill_id="d", policy="p", drill="n").tags  # type: ignore[arg-type]
    assert local("drorch_sandbox_tag") == SANDBOX_TAG
    assert set(local("drorch_drill_tags")) == set(tags), "the tags a drill adopts a snapshot copy with"
    for statement in statements(document("drill")):
        writes = {a for a in statement["actions"] if not a.startswith("ec2:Describe")}
        if not writes or statement["sid"] in UNCONDITIONED_WRITES:
            continue
        on_tag = [c for c in statement.get("condition", [])
                  if c["variable"] in ("aws:RequestTag/${local.drorch_sandbox_tag}",
                                       "ec2:ResourceTag/${local.drorch_sandbox_tag}")]
        assert on_tag, f"{statement['sid']}: drill writes not conditioned on {SANDBOX_TAG}"
        assert all(c["test"] == "StringEquals" and c["values"] == [tags[SANDBOX_TAG]] for c in on_tag), \
            statement["sid"]
        creates = {a for a in writes if a.startswith("ec2:Create") and a != "ec2:CreateTags"}
        in_existing_vpc = "ec2:CreateVpc" not in creates and all(r.endswith(":vpc/*")
                                                                  for r in statement["resources"])
        tagged_at_creation = bool(creates) and not in_existing_vpc
        kind = "aws:RequestTag/" if tagged_at_creation else "ec2:ResourceTag/"
        if creates or writes & {"ec2:TerminateInstances", "ec2:DeleteSnapshot", "ec2:DeleteSecurityGroup",
                                "ec2:DeleteSubnet", "ec2:DeleteVpc", "ec2:RevokeSecurityGroupEgress"}:
            assert on_tag[0]["variable"].startswith(kind), f"{statement['sid']}: expected {kind}"
        if statement["sid"] == "AdoptSnapshotCopies":
            keys = [c for c in statement["condition"] if c["variable"] == "aws:TagKeys"]
            assert keys and keys[0]["values"] == "${local.drorch_drill_tags}", "adopt adds drill tags only"
