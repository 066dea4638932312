# Two identities. The agent replicates (apply, prune, verify, status) and runs drills: it may
# launch, stop and terminate only what drorch launched, only into the isolated drill network,
# and switch DNS only in the drill zone. The failover role adds what the day of a disaster
# needs: launching into the DR network, fencing (stopping) production instances tagged
# var.fence_tag, and switching the production zones. Every action comes from a boto3 call of
# providers/{s3,aws_kms,aws_compute,aws_dns,aws_notify}.py, plus s3:PutObjectRetention
# (object-lock arguments of PutObject) and ec2:CreateTags (tags given at launch and copy);
# tests/terraform/test_aws_iam.py checks both directions.

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
      values   = ["RunInstances", "CopySnapshot"]
    }
  }

  # Undo of a launch, and failback's stop of the DR instance: only what drorch launched.
  statement {
    sid       = "StopWhatDrorchLaunched"
    actions   = ["ec2:StopInstances", "ec2:TerminateInstances"]
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
    actions   = ["sns:Publish"]
    resources = local.sns_topic_arns
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

  # Fence: stop the old primary (in any region) so it cannot write after the cutover.
  statement {
    sid       = "FencePrimary"
    actions   = ["ec2:StopInstances"]
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
