# DR landing zone for drorch on Azure: a storage account with the repository containers,
# a Key Vault with the customer-managed storage key and the envelope key, the agent and
# failover identities (iam.tf), the DR network and the isolated drill network, each in its
# own resource group (network.tf), so that identities can be scoped to one of them.

data "azurerm_client_config" "current" {}

locals {
  tags   = merge({ "drorch-managed-by" = "terraform/azure", "drorch-name" = var.name }, var.tags)
  suffix = substr(md5("${data.azurerm_client_config.current.subscription_id}/${var.name}"), 0, 6)

  storage_account_name = var.storage_account_name != null ? var.storage_account_name : substr("${replace(var.name, "-", "")}drorch${local.suffix}", 0, 24)

  # Version-level immutability is an account setting: on if any container asks for it, with
  # the longest retention asked for. drorch sets each blob's own policy as it writes it.
  immutable      = anytrue([for c in values(var.containers) : c.object_lock])
  retention_days = max(concat([1], [for c in values(var.containers) : c.retention_days if c.object_lock])...)
  locked_mode    = anytrue([for c in values(var.containers) : c.object_lock && c.object_lock_mode == "COMPLIANCE"])

  # Repository prefixes by container: "" is the whole container, "shop" becomes "shop/".
  paths = { for c, cfg in var.containers : c => distinct([for p in cfg.prefixes : trim(p, "/") == "" ? "" : "${trim(p, "/")}/"]) }
}

resource "azurerm_resource_group" "drorch" {
  name     = "${var.name}-drorch"
  location = var.location
  tags     = local.tags
}

# ----------------------------------------------------------------------------------- keys

resource "azurerm_key_vault" "drorch" {
  #checkov:skip=CKV2_AZURE_32:reached from on-prem agents over the allowed IP ranges; add a private endpoint where the network design has one
  #checkov:skip=CKV_AZURE_189:public endpoint limited by network_acls (default Deny, allowed_ip_ranges): on-prem agents and the Terraform runner must reach it
  name                          = "${var.name}-kv${local.suffix}"
  location                      = azurerm_resource_group.drorch.location
  resource_group_name           = azurerm_resource_group.drorch.name
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "premium"
  enable_rbac_authorization     = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  public_network_access_enabled = true
  tags                          = local.tags

  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
    ip_rules       = var.allowed_ip_ranges
  }
}

# Whoever runs Terraform creates and rotates the keys.
resource "azurerm_role_assignment" "terraform_manages_keys" {
  scope                = azurerm_key_vault.drorch.id
  role_definition_name = "Key Vault Crypto Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_key_vault_key" "storage" {
  #checkov:skip=CKV_AZURE_40:rotation_policy rotates the key and sets expire_after on each version; a fixed expiration date would make the storage account unreadable on that day
  name         = "${var.name}-storage"
  key_vault_id = azurerm_key_vault.drorch.id
  key_type     = "RSA-HSM"
  key_size     = 3072
  key_opts     = ["wrapKey", "unwrapKey"]

  rotation_policy {
    expire_after         = "P2Y"
    notify_before_expiry = "P30D"
    automatic {
      time_after_creation = "P365D"
    }
  }

  depends_on = [azurerm_role_assignment.terraform_manages_keys]
}

resource "azurerm_key_vault_key" "envelope" {
  #checkov:skip=CKV_AZURE_40:rotation_policy rotates the key and sets expire_after on each version; a fixed expiration date would make every repository key unrecoverable on that day
  name         = "${var.name}-envelope"
  key_vault_id = azurerm_key_vault.drorch.id
  key_type     = "RSA-HSM"
  key_size     = 3072
  key_opts     = ["encrypt", "decrypt", "wrapKey", "unwrapKey"]

  rotation_policy {
    expire_after         = "P2Y"
    notify_before_expiry = "P30D"
    automatic {
      time_after_creation = "P365D"
    }
  }

  depends_on = [azurerm_role_assignment.terraform_manages_keys]
}

resource "azurerm_user_assigned_identity" "storage" {
  name                = "${var.name}-drorch-storage"
  location            = azurerm_resource_group.drorch.location
  resource_group_name = azurerm_resource_group.drorch.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "storage_uses_key" {
  scope                = azurerm_key_vault_key.storage.resource_versionless_id
  role_definition_name = "Key Vault Crypto Service Encryption User"
  principal_id         = azurerm_user_assigned_identity.storage.principal_id
}

# -------------------------------------------------------------------------------- storage

resource "azurerm_storage_account" "repository" {
  #checkov:skip=CKV2_AZURE_40:drorch's Azure adapter authenticates with the account key until it supports Entra ID; set shared_key_access = false then
  #checkov:skip=CKV2_AZURE_33:reached from on-prem agents over the allowed IP ranges; add a private endpoint where the network design has one
  #checkov:skip=CKV_AZURE_59:public endpoint limited by network_rules (default Deny, allowed_ip_ranges): on-prem agents must reach it
  #checkov:skip=CKV_AZURE_33:no queues are used; the account holds blob containers only
  name                              = local.storage_account_name
  resource_group_name               = azurerm_resource_group.drorch.name
  location                          = azurerm_resource_group.drorch.location
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.replication_type
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = var.shared_key_access
  infrastructure_encryption_enabled = true
  local_user_enabled                = false
  sftp_enabled                      = false
  cross_tenant_replication_enabled  = false
  default_to_oauth_authentication   = true
  public_network_access_enabled     = true
  tags                              = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.storage.id]
  }

  customer_managed_key {
    key_vault_key_id          = azurerm_key_vault_key.storage.versionless_id
    user_assigned_identity_id = azurerm_user_assigned_identity.storage.id
  }

  network_rules {
    default_action = "Deny"
    bypass         = ["AzureServices"]
    ip_rules       = var.allowed_ip_ranges
  }

  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = var.soft_delete_days
    }

    container_delete_retention_policy {
      days = var.soft_delete_days
    }
  }

  # Created Unlocked (Azure allows nothing else); see the README to lock it for COMPLIANCE.
  dynamic "immutability_policy" {
    for_each = local.immutable ? [local.retention_days] : []
    content {
      allow_protected_append_writes = false
      state                         = "Unlocked"
      period_since_creation_in_days = immutability_policy.value
    }
  }

  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  depends_on = [azurerm_role_assignment.storage_uses_key]
}

# Uncommitted blocks of an interrupted upload are discarded by the service after 7 days;
# previous versions (left by deletes) are removed after noncurrent_version_days.
resource "azurerm_storage_management_policy" "repository" {
  storage_account_id = azurerm_storage_account.repository.id

  rule {
    name    = "expire-previous-versions"
    enabled = true
    filters {
      blob_types = ["blockBlob"]
    }
    actions {
      version {
        delete_after_days_since_creation = var.noncurrent_version_days
      }
    }
  }
}

resource "azurerm_storage_container" "repository" {
  #checkov:skip=CKV2_AZURE_21:blob read logging is a diagnostic setting towards the operator's Log Analytics workspace, not part of this module
  for_each = var.containers

  name                  = each.key
  storage_account_id    = azurerm_storage_account.repository.id
  container_access_type = "private"
}
