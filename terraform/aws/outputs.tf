output "encryption_key" {
  description = "Value for the policy's encryption.key (the envelope KMS key)."
  value       = "kms:aws:${local.envelope_key_arn}"
}

output "envelope_key_arn" {
  description = "KMS key wrapping each repository key."
  value       = local.envelope_key_arn
}

output "storage_key_arn" {
  description = "KMS key encrypting the repository buckets (SSE-KMS), the SNS topic and flow logs."
  value       = aws_kms_key.storage.arn
}

output "bucket_arns" {
  description = "Repository buckets by name."
  value       = { for name, b in aws_s3_bucket.repository : name => b.arn }
}

output "agent_role_arn" {
  description = "Role the drorch agent assumes (apply, prune, verify, drills)."
  value       = aws_iam_role.agent.arn
}

output "failover_role_arn" {
  description = "Role for drorch failover/failback (MFA by default)."
  value       = aws_iam_role.failover.arn
}

output "drill_role_arn" {
  description = "Role for drorch drill and drorch schedule with drills (the agent's rights plus the drill sandbox)."
  value       = aws_iam_role.drill.arn
}

output "dr_vpc_id" {
  description = "The DR VPC."
  value       = aws_vpc.dr.id
}

output "dr_subnet_ids" {
  description = "DR subnets by Name tag."
  value       = { for name, s in aws_subnet.dr : name => s.id }
}

output "dr_security_group_ids" {
  description = "DR security groups by name."
  value       = { for name, g in aws_security_group.dr : name => g.id }
}

output "drill_vpc_id" {
  description = "The isolated drill VPC."
  value       = aws_vpc.drill.id
}

output "drill_subnet_ids" {
  description = "Drill subnets by Name tag (<DR subnet name>-drill)."
  value       = { for name, s in aws_subnet.drill : s.tags.Name => s.id }
}

output "drill_security_group_ids" {
  description = "Drill security groups by name."
  value       = { for name, g in aws_security_group.drill : name => g.id }
}

output "drill_zone_id" {
  description = "Private hosted zone of the drill VPC."
  value       = aws_route53_zone.drill.zone_id
}

output "sns_topic_arn" {
  description = "Topic for runbook notify steps."
  value       = aws_sns_topic.dr.arn
}

output "recovery_vm_profile" {
  description = "Instance profile for recovery.instance.profile: a VM that restores a directory mirror at boot"
  value       = aws_iam_instance_profile.recovery_vm.name
}
