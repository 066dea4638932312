# DR landing zone for drorch on AWS: what an operator applies once so that drorch runs
# with least privilege. storage.tf: repository buckets and KMS keys; iam.tf: the agent,
# failover and drill identities; network.tf: the DR network and the isolated drill network.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# Pinned by name: subnets are spread over a fixed list, so a new zone in the region never
# moves (replaces) them. Names that do not exist in the region are simply not returned.
data "aws_availability_zones" "available" {
  state = "available"
  filter {
    name   = "zone-name"
    values = length(var.availability_zones) > 0 ? var.availability_zones : [for z in ["a", "b", "c"] : "${var.region}${z}"]
  }
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  account    = "arn:${local.partition}:iam::${local.account_id}:root"

  tags = merge({ "drorch:managed-by" = "terraform/aws", "drorch:name" = var.name }, var.tags)

  # One entry per repository prefix: "" is the whole bucket, "shop" becomes "shop/".
  repositories = flatten([
    for bucket, cfg in var.buckets : [
      for prefix in cfg.prefixes : {
        bucket = bucket
        path   = trim(prefix, "/") == "" ? "" : "${trim(prefix, "/")}/"
        locked = cfg.object_lock
      }
    ]
  ])
  locked_buckets = { for bucket, cfg in var.buckets : bucket => cfg if cfg.object_lock }

  bucket_arns          = [for bucket in keys(var.buckets) : "arn:${local.partition}:s3:::${bucket}"]
  repository_arns      = [for r in local.repositories : "arn:${local.partition}:s3:::${r.bucket}/${r.path}*"]
  lock_file_arns       = [for r in local.repositories : "arn:${local.partition}:s3:::${r.bucket}/${r.path}locks/*"]
  locked_repo_arns     = [for r in local.repositories : "arn:${local.partition}:s3:::${r.bucket}/${r.path}*" if r.locked]
  unlocked_repo_arns   = [for r in local.repositories : "arn:${local.partition}:s3:::${r.bucket}/${r.path}*" if !r.locked]
  envelope_key_arn     = var.envelope_key_arn != null ? var.envelope_key_arn : aws_kms_key.envelope[0].arn
  sns_topic_arns       = concat([aws_sns_topic.dr.arn], var.sns_topic_arns)
  dns_zone_arns        = [for id in var.dns_zone_ids : "arn:${local.partition}:route53:::hostedzone/${trimprefix(id, "/hostedzone/")}"]
  drill_zone_arn       = "arn:${local.partition}:route53:::hostedzone/${aws_route53_zone.drill.zone_id}"
  ec2_arn              = "arn:${local.partition}:ec2:${var.region}:${local.account_id}"
  ec2_any_region_arn   = "arn:${local.partition}:ec2:*:${local.account_id}"
  ec2_public_arn       = "arn:${local.partition}:ec2:${var.region}::"
  drorch_launched_tag  = "drorch:recovery"
  drorch_copy_tag      = "drorch:token"
  drorch_mirror_tag    = "drorch:mirror"
  storage_via_services = ["s3.${var.region}.amazonaws.com", "sns.${var.region}.amazonaws.com"]

  # What a sandboxed drill tags everything with (drorch/drill/sandbox.py): the drill role
  # creates, changes and removes only what carries drorch_sandbox_tag = "true".
  drorch_sandbox_tag = "drorch:sandbox"
  drorch_drill_tags  = ["drorch:sandbox", "drorch:drill", "drorch:drill-policy", "drorch:drill-name"]
}
