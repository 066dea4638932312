output "encryption_key" {
  description = "Value for the policy's encryption.key (the envelope Cloud KMS key)."
  value       = "kms:gcp:${local.envelope_key_name}"
}

output "storage_key_name" {
  description = "Cloud KMS key encrypting the repository buckets (CMEK)."
  value       = google_kms_crypto_key.storage.id
}

output "bucket_urls" {
  description = "Repository buckets by name."
  value       = { for name, b in google_storage_bucket.repository : name => b.url }
}

output "agent_service_account" {
  description = "Service account of the drorch agent (apply, prune, verify, drills)."
  value       = google_service_account.agent.email
}

output "failover_service_account" {
  description = "Service account for drorch failover/failback."
  value       = google_service_account.failover.email
}

output "dr_network" {
  description = "The DR VPC network."
  value       = google_compute_network.dr.id
}

output "dr_subnets" {
  description = "DR subnets by name."
  value       = { for name, s in google_compute_subnetwork.dr : name => s.id }
}

output "drill_network" {
  description = "The isolated drill network."
  value       = google_compute_network.drill.id
}

output "drill_subnets" {
  description = "Drill subnets by name (<DR subnet name>-drill)."
  value       = { for name, s in google_compute_subnetwork.drill : s.name => s.id }
}

output "drill_zone" {
  description = "Private DNS zone of the drill network."
  value       = google_dns_managed_zone.drill.name
}
