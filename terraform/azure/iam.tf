# Two user-assigned identities. The agent reads, lists and writes blobs of the repository
# containers, deletes lock files always and other blobs only where no immutability applies
# (an ABAC condition on the blob path), uses the envelope key, manages VMs only in the drill
# resource group and records only in the drill zone. The failover identity adds VMs in the
# DR resource group and the production DNS zones. Until drorch's Azure adapter supports
# Entra ID it authenticates with the account key, which these roles cannot narrow.

locals {
  identities = {
    agent    = azurerm_user_assigned_identity.agent.principal_id
    failover = azurerm_user_assigned_identity.failover.principal_id
  }
  blob_delete = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete"
  blob_path   = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path]"

  # Deletes of a locked container: lock files only.
  lock_file_condition = {
    for c, paths in local.paths : c => "(!(ActionMatches{'${local.blob_delete}'})) OR (${join(" OR ", [for p in paths : "${local.blob_path} StringStartsWith '${p}locks/'"])})"
  }
  container_members = merge([
    for c in keys(var.containers) : { for who, principal in local.identities : "${c}/${who}" => { container = c, principal = principal } }
  ]...)
}

resource "azurerm_user_assigned_identity" "agent" {
  name                = "${var.name}-drorch-agent"
  location            = azurerm_resource_group.drorch.location
  resource_group_name = azurerm_resource_group.drorch.name
  tags                = local.tags
}

resource "azurerm_user_assigned_identity" "failover" {
  name                = "${var.name}-drorch-failover"
  location            = azurerm_resource_group.drorch.location
  resource_group_name = azurerm_resource_group.drorch.name
  tags                = local.tags
}

resource "azurerm_role_definition" "repository" {
  name        = "${var.name} drorch repository"
  scope       = azurerm_resource_group.drorch.id
  description = "What drorch does in a repository container: list, read, write, delete (conditioned per assignment)"

  permissions {
    actions = ["Microsoft.Storage/storageAccounts/blobServices/containers/read"]
    data_actions = [
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
      local.blob_delete,
    ]
  }

  assignable_scopes = [azurerm_resource_group.drorch.id]
}

resource "azurerm_role_assignment" "repository" {
  for_each = local.container_members

  scope              = azurerm_storage_container.repository[each.value.container].id
  role_definition_id = azurerm_role_definition.repository.role_definition_resource_id
  principal_id       = each.value.principal
  condition_version  = var.containers[each.value.container].object_lock ? "2.0" : null
  condition          = var.containers[each.value.container].object_lock ? local.lock_file_condition[each.value.container] : null
}

resource "azurerm_role_assignment" "envelope_key" {
  for_each = local.identities

  scope                = azurerm_key_vault_key.envelope.resource_versionless_id
  role_definition_name = "Key Vault Crypto User"
  principal_id         = each.value
}

# Recovery VMs: drills (agent) only in the drill resource group, failover in the DR one.
resource "azurerm_role_assignment" "drill_vms" {
  for_each = local.identities

  scope                = azurerm_resource_group.drill.id
  role_definition_name = "Virtual Machine Contributor"
  principal_id         = each.value
}

resource "azurerm_role_assignment" "dr_vms" {
  scope                = azurerm_resource_group.network.id
  role_definition_name = "Virtual Machine Contributor"
  principal_id         = azurerm_user_assigned_identity.failover.principal_id
}

resource "azurerm_role_assignment" "drill_dns" {
  for_each = local.identities

  scope                = azurerm_private_dns_zone.drill.id
  role_definition_name = "Private DNS Zone Contributor"
  principal_id         = each.value
}

resource "azurerm_role_assignment" "production_dns" {
  for_each = toset(var.dns_zone_ids)

  scope                = each.value
  role_definition_name = "DNS Zone Contributor"
  principal_id         = azurerm_user_assigned_identity.failover.principal_id
}
