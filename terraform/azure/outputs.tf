output "encryption_key" {
  description = "Value for the policy's encryption.key (the envelope Key Vault key)."
  value       = "kms:azure:${azurerm_key_vault_key.envelope.versionless_id}"
}

output "storage_account_name" {
  description = "Storage account of the repositories (AZURE_STORAGE_ACCOUNT for drorch)."
  value       = azurerm_storage_account.repository.name
}

output "container_ids" {
  description = "Repository containers by name."
  value       = { for name, c in azurerm_storage_container.repository : name => c.id }
}

output "key_vault_id" {
  description = "Key Vault holding the storage and envelope keys."
  value       = azurerm_key_vault.drorch.id
}

output "agent_identity" {
  description = "Client ID of the drorch agent identity (apply, prune, verify, drills)."
  value       = azurerm_user_assigned_identity.agent.client_id
}

output "failover_identity" {
  description = "Client ID of the drorch failover identity."
  value       = azurerm_user_assigned_identity.failover.client_id
}

output "dr_subnet_ids" {
  description = "DR subnets by name."
  value       = { for name, s in azurerm_subnet.dr : name => s.id }
}

output "drill_subnet_ids" {
  description = "Drill subnets by name (<DR subnet name>-drill)."
  value       = { for name, s in azurerm_subnet.drill : s.name => s.id }
}

output "drill_zone_id" {
  description = "Private DNS zone of the drill network."
  value       = azurerm_private_dns_zone.drill.id
}
