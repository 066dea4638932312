# Three identities. The agent replicates (apply, prune, verify, status): it may launch, stop
# and terminate only what drorch launched, only into the drill network of network.tf, and
# switch DNS only in the drill zone. The failover role adds what the day of a disaster needs:
# launching into the DR network, fencing (stopping) production instances tagged
# var.fence_tag, and switching the production zones. The drill role adds what a sandboxed
# drill needs: a VPC, subnet and security group of its own per drill, created only with the
# drorch:sandbox tag, launches into them, and removal of nothing but what carries that tag.
# Every action comes from a boto3 call of providers/{s3,aws_kms,aws_compute,aws_dns,
# aws_notify}.py (agent, failover) or providers/aws_sandbox.py (drill), plus
# s3:PutObjectRetention (object-lock arguments of PutObject) and ec2:CreateTags (tags given
# at launch and copy); tests/terraform/test_aws_iam.py checks both directions.

data "aws_iam_policy_document" "agent_trust" {
  statement {
    sid     = "AgentAssumesRole"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = length(var.agent_trusted_principals) > 0 ? var.agent_trusted_principals : [local.account]
    }
  }
}

data "aws_iam_policy_document" "failover_trust" {
  statement {
    sid     = "OperatorAssumesFailoverRole"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = length(var.failover_trusted_principals) > 0 ? var.failover_trusted_principals : [local.account]
    }
    dynamic "condition" {
      for_each = var.failover_require_mfa ? [true] : []
      content {
        test     = "Bool"
        variable = "aws:MultiFactorAuthPresent"
        values   = ["true"]
      }
    }
  }
}

data "aws_iam_policy_document" "drill_trust" {
  statement {
    sid     = "SchedulerAssumesDrillRole"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = length(var.drill_trusted_principals) > 0 ? var.drill_trusted_principals : [local.account]
    }
  }
}

resource "aws_iam_role" "agent" {
  name                 = "${var.name}-drorch-agent"
  description          = "drorch agent: replicate into the repositories, run drills in the drill network"
  assume_role_policy   = data.aws_iam_policy_document.agent_trust.json
  max_session_duration = 43200
}

resource "aws_iam_role" "failover" {
  name                 = "${var.name}-drorch-failover"
  description          = "drorch failover/failback: launch in the DR network, fence the primary, switch DNS"
  assume_role_policy   = data.aws_iam_policy_document.failover_trust.json
  max_session_duration = 14400
}

resource "aws_iam_role" "drill" {
  name                 = "${var.name}-drorch-drill"
  description          = "drorch drills: the agent's rights plus a sandbox network of its own per drill"
  assume_role_policy   = data.aws_iam_policy_document.drill_trust.json
  max_session_duration = 43200
}

resource "aws_iam_policy" "agent" {
  name        = "${var.name}-drorch-agent"
  description = "What drorch calls, on the repositories and on the resources it launched"
  policy      = data.aws_iam_policy_document.agent.json
}

resource "aws_iam_policy" "failover" {
  name        = "${var.name}-drorch-failover"
  description = "What failover adds to the agent: the DR network, fencing, production DNS"
  policy      = data.aws_iam_policy_document.failover.json
}

resource "aws_iam_policy" "drill" {
  name        = "${var.name}-drorch-drill"
  description = "What drills add to the agent: create, launch into and remove drorch:sandbox networks"
  policy      = data.aws_iam_policy_document.drill.json
}

resource "aws_iam_role_policy_attachment" "agent" {
  role       = aws_iam_role.agent.name
  policy_arn = aws_iam_policy.agent.arn
}

resource "aws_iam_role_policy_attachment" "failover_agent" {
  role       = aws_iam_role.failover.name
  policy_arn = aws_iam_policy.agent.arn
}

resource "aws_iam_role_policy_attachment" "failover" {
  role       = aws_iam_role.failover.name
  policy_arn = aws_iam_policy.failover.arn
}

resource "aws_iam_role_policy_attachment" "drill_agent" {
  role       = aws_iam_role.drill.name
  policy_arn = aws_iam_policy.agent.arn
}

resource "aws_iam_role_policy_attachment" "drill" {
  role       = aws_iam_role.drill.name
  policy_arn = aws_iam_policy.drill.arn
}

data "aws_iam_policy_document" "agent" {
  # ------------------------------------------------------------------ repositories (S3)

  # On the whole (dedicated) bucket: S3 answers a GET/HEAD of a missing object with 404 only
  # to callers allowed s3:ListBucket, and drorch relies on 404 to tell "absent" from "denied".
  statement {
    sid       = "RepositoryBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketObjectLockConfiguration"]
    resources = length(local.bucket_arns) > 0 ? local.bucket_arns : ["arn:${local.partition}:s3:::${var.name}-no-bucket"]
  }

  statement {
    sid       = "RepositoryObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = length(local.repository_arns) > 0 ? local.repository_arns : ["arn:${local.partition}:s3:::${var.name}-no-bucket/*"]
  }

  # drorch writes every object of a locked repository with a retention date.
  dynamic "statement" {
    for_each = length(local.locked_repo_arns) > 0 ? [true] : []
    content {
      sid       = "RepositoryRetention"
      actions   = ["s3:PutObjectRetention"]
      resources = local.locked_repo_arns
    }
  }

  # Lock files are removed when a run ends, locked repository or not. In a versioned bucket
  # this only adds a delete marker: the locked version itself stays until its retention ends.
  statement {
    sid       = "RepositoryLockFiles"
    actions   = ["s3:DeleteObject"]
    resources = length(local.lock_file_arns) > 0 ? local.lock_file_arns : ["arn:${local.partition}:s3:::${var.name}-no-bucket/locks/*"]
  }

  # Prune deletes packs, indexes and snapshots only where no object lock applies; in locked
  # repositories the delete is refused, and prune keeps the object and says why.
  dynamic "statement" {
    for_each = length(local.unlocked_repo_arns) > 0 ? [true] : []
    content {
      sid       = "RepositoryPrune"
      actions   = ["s3:DeleteObject"]
      resources = local.unlocked_repo_arns
    }
  }

  # --------------------------------------------------------------------------------- KMS

  statement {
    sid       = "StorageKeyThroughS3AndSns"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.storage.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = local.storage_via_services
    }
  }

  statement {
    sid       = "RepositoryKeyEnvelope"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [local.envelope_key_arn]
  }

  # --------------------------------------------------------------------------- EC2 / EBS

  # Describe calls cannot be scoped to resources.
  statement {
    sid = "Ec2Read"
    actions = [
      "ec2:DescribeImages",
      "ec2:DescribeInstances",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSnapshots",
      "ec2:DescribeSubnets",
      "ec2:DescribeVolumes",
    ]
    resources = ["*"]
  }

  # An instance is launched only with drorch's tags and of a type the policy names.
  statement {
    sid       = "LaunchTaggedInstances"
    actions   = ["ec2:RunInstances"]
    resources = ["${local.ec2_arn}:instance/*"]
    condition {
      test     = "Null"
      variable = "aws:RequestTag/${local.drorch_launched_tag}"
      values   = ["false"]
    }
    condition {
      test     = "StringEquals"
      variable = "ec2:InstanceType"
      values   = length(var.instance_types) > 0 ? var.instance_types : ["none"]
    }
  }

  statement {
    sid       = "LaunchTaggedVolumes"
    actions   = ["ec2:RunInstances"]
    resources = ["${local.ec2_arn}:volume/*"]
    condition {
      test     = "Null"
      variable = "aws:RequestTag/${local.drorch_launched_tag}"
      values   = ["false"]
    }
  }

  # Images, data snapshots and key pairs are only read by a launch.
  statement {
    sid     = "LaunchFromImagesAndSnapshots"
    actions = ["ec2:RunInstances"]
    resources = [
      "${local.ec2_public_arn}image/*",
      "${local.ec2_public_arn}snapshot/*",
      "${local.ec2_arn}:key-pair/*",
    ]
  }

  statement {
    sid       = "LaunchIntoDrillNetwork"
    actions   = ["ec2:RunInstances"]
    resources = concat([for s in aws_subnet.drill : s.arn], ["${local.ec2_arn}:security-group/*", "${local.ec2_arn}:network-interface/*"])
    condition {
      test     = "StringEquals"
      variable = "ec2:Vpc"
      values   = [aws_vpc.drill.arn]
    }
  }

  # Cross-region copies of the newest data snapshot, tagged with the run's token.
  statement {
    sid       = "CopyDataSnapshots"
    actions   = ["ec2:CopySnapshot"]
    resources = ["arn:${local.partition}:ec2:*::snapshot/*"]
    condition {
      test     = "Null"
      variable = "aws:RequestTag/${local.drorch_copy_tag}"
      values   = ["false"]
    }
  }

  # `drorch export ebs`: image snapshots written with the EBS direct APIs, always tagged
  # drorch:mirror at StartSnapshot; blocks go only into snapshots carrying that tag.
  statement {
    sid       = "StartMirrorSnapshots"
    actions   = ["ebs:StartSnapshot"]
    resources = ["${local.ec2_public_arn}snapshot/*"]
    condition {
      test     = "Null"
      variable = "aws:RequestTag/${local.drorch_mirror_tag}"
      values   = ["false"]
    }
  }

  statement {
    sid       = "WriteMirrorSnapshots"
    actions   = ["ebs:PutSnapshotBlock", "ebs:CompleteSnapshot"]
    resources = ["${local.ec2_public_arn}snapshot/*"]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.drorch_mirror_tag}"
      values   = ["false"]
    }
  }

  statement {
    sid     = "TagWhatDrorchCreates"
    actions = ["ec2:CreateTags"]
    resources = [
      "${local.ec2_arn}:instance/*",
      "${local.ec2_arn}:volume/*",
      "${local.ec2_public_arn}snapshot/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["RunInstances", "CopySnapshot", "StartSnapshot"]
    }
  }

  # Undo of a launch, failback's stop of the DR instance and that stop's undo (start it
  # again): only what drorch launched.
  statement {
    sid       = "StopWhatDrorchLaunched"
    actions   = ["ec2:StartInstances", "ec2:StopInstances", "ec2:TerminateInstances"]
    resources = ["${local.ec2_any_region_arn}:instance/*"]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.drorch_launched_tag}"
      values   = ["false"]
    }
  }

  # ----------------------------------------------------------------------------- Route53

  statement {
    sid       = "DnsLookup"
    actions   = ["route53:ListHostedZonesByName"]
    resources = ["*"]
  }

  statement {
    sid       = "DnsChangeStatus"
    actions   = ["route53:GetChange"]
    resources = ["arn:${local.partition}:route53:::change/*"]
  }

  statement {
    sid       = "DnsReadRecords"
    actions   = ["route53:ListResourceRecordSets"]
    resources = concat([local.drill_zone_arn], local.dns_zone_arns)
  }

  statement {
    sid       = "DnsSwitchDrillRecords"
    actions   = ["route53:ChangeResourceRecordSets"]
    resources = [local.drill_zone_arn]
  }

  # --------------------------------------------------------------------------------- SNS

  statement {
    sid       = "Notify"
    actions   = ["sns:GetTopicAttributes", "sns:Publish"]
    resources = local.sns_topic_arns
  }

  # ------------------------------------------------------- directory mirrors restored at boot

  # launch waits for the report a recovery VM writes once it restored the mirror.
  statement {
    sid       = "ReadBootReports"
    actions   = ["ssm:GetParameter"]
    resources = ["arn:${local.partition}:ssm:*:${local.account_id}:parameter/drorch/boot/*"]
  }

  # launch starts that VM with the recovery VM's instance profile, and no other role.
  statement {
    sid       = "PassRecoveryVmRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.recovery_vm.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "failover" {
  statement {
    sid       = "LaunchIntoDrNetwork"
    actions   = ["ec2:RunInstances"]
    resources = concat([for s in aws_subnet.dr : s.arn], ["${local.ec2_arn}:security-group/*", "${local.ec2_arn}:network-interface/*"])
    condition {
      test     = "StringEquals"
      variable = "ec2:Vpc"
      values   = [aws_vpc.dr.arn]
    }
  }

  # Fence: stop the old primary (in any region) so it cannot write after the cutover; the
  # fence's undo starts it again when a later step fails.
  statement {
    sid       = "FencePrimary"
    actions   = ["ec2:StartInstances", "ec2:StopInstances"]
    resources = ["${local.ec2_any_region_arn}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${var.fence_tag.key}"
      values   = [var.fence_tag.value]
    }
  }

  dynamic "statement" {
    for_each = length(local.dns_zone_arns) > 0 ? [true] : []
    content {
      sid       = "DnsSwitchProduction"
      actions   = ["route53:ChangeResourceRecordSets"]
      resources = local.dns_zone_arns
    }
  }
}

# Everything below is conditioned on the drill's tag (local.drorch_sandbox_tag = "true"), set
# at creation (aws:RequestTag) and required for every later change or removal
# (ec2:ResourceTag). Tags can be added only at creation or to drorch's own snapshot copies, so
# no existing resource can be tagged into reach.
data "aws_iam_policy_document" "drill" {
  # Describe calls cannot be scoped to resources (leftovers are found by tag filters).
  statement {
    sid = "SandboxRead"
    actions = [
      "ec2:DescribeInstances",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSnapshots",
      "ec2:DescribeSubnets",
      "ec2:DescribeVpcs",
    ]
    resources = ["*"]
  }

  # ------------------------------------------------------------------------ isolated network

  statement {
    sid       = "CreateTaggedSandboxVpc"
    actions   = ["ec2:CreateVpc"]
    resources = ["${local.ec2_arn}:vpc/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.drorch_sandbox_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid       = "CreateTaggedSandboxSubnetsAndGroups"
    actions   = ["ec2:CreateSubnet", "ec2:CreateSecurityGroup"]
    resources = ["${local.ec2_arn}:subnet/*", "${local.ec2_arn}:security-group/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.drorch_sandbox_tag}"
      values   = ["true"]
    }
  }

  # ... and only inside a sandbox VPC, never in the DR or a production VPC.
  statement {
    sid       = "OnlyInsideSandboxVpcs"
    actions   = ["ec2:CreateSubnet", "ec2:CreateSecurityGroup"]
    resources = ["${local.ec2_arn}:vpc/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/${local.drorch_sandbox_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid       = "TagSandboxNetworkAtCreation"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.ec2_arn}:vpc/*", "${local.ec2_arn}:subnet/*", "${local.ec2_arn}:security-group/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateVpc", "CreateSubnet", "CreateSecurityGroup"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.drorch_sandbox_tag}"
      values   = ["true"]
    }
  }

  # The sandbox group admits and sends only the sandbox VPC's own range.
  statement {
    sid = "ConfineSandboxGroups"
    actions = [
      "ec2:AuthorizeSecurityGroupEgress",
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:RevokeSecurityGroupEgress",
    ]
    resources = ["${local.ec2_arn}:security-group/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/${local.drorch_sandbox_tag}"
      values   = ["true"]
    }
  }

  # ----------------------------------------------------------- the runbook's launch, sandboxed

  # The agent's policy covers the instance, its volumes, image and snapshot; this adds the
  # sandbox subnet and group, where the drill puts every launch.
  statement {
    sid       = "LaunchIntoSandboxNetwork"
    actions   = ["ec2:RunInstances"]
    resources = ["${local.ec2_arn}:subnet/*", "${local.ec2_arn}:security-group/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/${local.drorch_sandbox_tag}"
      values   = ["true"]
    }
  }

  # The launch creates the instance's network interface, untagged, so no tag condition can
  # apply; it can only be created in a subnet the launch is allowed (the statement above).
  statement {
    sid       = "LaunchNetworkInterfaces"
    actions   = ["ec2:RunInstances"]
    resources = ["${local.ec2_arn}:network-interface/*"]
  }

  # A cross-region launch copies the data snapshot (tagged drorch:token by the agent's copy);
  # the drill tags that copy as its own so cleanup removes it.
  statement {
    sid       = "AdoptSnapshotCopies"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.ec2_public_arn}snapshot/*"]
    condition {
      test     = "Null"
      variable = "ec2:ResourceTag/${local.drorch_copy_tag}"
      values   = ["false"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.drorch_sandbox_tag}"
      values   = ["true"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = local.drorch_drill_tags
    }
  }

  # -------------------------------------------------------------------- cleanup and the sweep

  statement {
    sid       = "TerminateSandboxInstances"
    actions   = ["ec2:TerminateInstances"]
    resources = ["${local.ec2_arn}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/${local.drorch_sandbox_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid       = "DeleteSandboxSnapshotCopies"
    actions   = ["ec2:DeleteSnapshot"]
    resources = ["${local.ec2_public_arn}snapshot/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/${local.drorch_sandbox_tag}"
      values   = ["true"]
    }
    condition {
      test     = "Null"
      variable = "ec2:ResourceTag/${local.drorch_copy_tag}"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DeleteSandboxNetwork"
    actions   = ["ec2:DeleteSecurityGroup", "ec2:DeleteSubnet", "ec2:DeleteVpc"]
    resources = ["${local.ec2_arn}:security-group/*", "${local.ec2_arn}:subnet/*", "${local.ec2_arn}:vpc/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/${local.drorch_sandbox_tag}"
      values   = ["true"]
    }
  }
}

# The recovery VM (recovery.instance.profile): at boot it reads the repository password from
# SSM, restores the mirror from the buckets and reports to /drorch/boot/*. Read-only on the
# repositories: a recovered VM can never damage the copies it was restored from.
data "aws_iam_policy_document" "recovery_vm_trust" {
  statement {
    sid     = "Ec2AssumesRecoveryVmRole"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "recovery_vm" {
  statement {
    sid       = "ReadRepositories"
    actions   = ["s3:GetObject"]
    resources = length(local.bucket_arns) > 0 ? [for arn in local.bucket_arns : "${arn}/*"] : ["arn:${local.partition}:s3:::${var.name}-no-bucket/*"]
  }

  statement {
    sid       = "ListRepositories"
    actions   = ["s3:ListBucket"]
    resources = length(local.bucket_arns) > 0 ? local.bucket_arns : ["arn:${local.partition}:s3:::${var.name}-no-bucket"]
  }

  statement {
    sid       = "ReadRepositoryKey"
    actions   = ["ssm:GetParameter"]
    resources = ["arn:${local.partition}:ssm:${var.region}:${local.account_id}:parameter/drorch/${var.name}/key"]
  }

  statement {
    sid       = "DecryptRepositories"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.storage.arn]
  }

  statement {
    sid       = "WriteBootReport"
    actions   = ["ssm:PutParameter"]
    resources = ["arn:${local.partition}:ssm:${var.region}:${local.account_id}:parameter/drorch/boot/*"]
  }
}

resource "aws_iam_role" "recovery_vm" {
  name               = "${var.name}-drorch-recovery-vm"
  description        = "a drorch recovery VM: restore a directory mirror at boot, read-only"
  assume_role_policy = data.aws_iam_policy_document.recovery_vm_trust.json
}

resource "aws_iam_role_policy" "recovery_vm" {
  name   = "${var.name}-drorch-recovery-vm"
  role   = aws_iam_role.recovery_vm.id
  policy = data.aws_iam_policy_document.recovery_vm.json
}

resource "aws_iam_instance_profile" "recovery_vm" {
  name = "${var.name}-drorch-recovery-vm"
  role = aws_iam_role.recovery_vm.name
}
