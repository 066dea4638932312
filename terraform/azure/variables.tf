# Inputs of the Azure DR landing zone. `drorch export terraform POLICY --cloud azure` writes
# drorch.auto.tfvars.json with the values the policy knows (name, location, containers,
# dr_subnet_names, dr_security_group_names); the rest have defaults.

variable "name" {
  description = "Prefix of every resource name (the policy's metadata.name)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,13}[a-z0-9])?$", var.name))
    error_message = "name must start with a letter and be 1-15 lowercase letters, digits and inner hyphens (Key Vault names are at most 24 characters)."
  }
}

variable "location" {
  description = "The DR region (Azure location): storage, keys and networks are created here."
  type        = string
}

variable "subscription_id" {
  description = "Subscription to deploy into. null: ARM_SUBSCRIPTION_ID from the environment."
  type        = string
  default     = null
}

variable "storage_account_name" {
  description = "Storage account holding the repository containers (AZURE_STORAGE_ACCOUNT for drorch). null: derived from name."
  type        = string
  default     = null
}

variable "containers" {
  description = <<-EOT
    Repository containers by name (the az:// targets of the policy). prefixes are the repository
    prefixes inside the container ("" for the whole container). object_lock on any container
    enables version-level immutability on the account with a default retention of the largest
    retention_days: blobs (drorch also sets a policy per blob) cannot be changed or removed
    before it ends; deleting a blob only makes its version a previous version.
  EOT
  type = map(object({
    prefixes         = optional(list(string), [""])
    object_lock      = optional(bool, false)
    retention_days   = optional(number, 30)
    object_lock_mode = optional(string, "COMPLIANCE")
  }))
  default = {}

  validation {
    condition     = alltrue([for c in values(var.containers) : contains(["COMPLIANCE", "GOVERNANCE"], c.object_lock_mode)])
    error_message = "object_lock_mode must be COMPLIANCE or GOVERNANCE."
  }
}

variable "replication_type" {
  description = "Redundancy of the storage account (GRS keeps a copy in the paired region)."
  type        = string
  default     = "GRS"
}

variable "noncurrent_version_days" {
  description = "Days a previous blob version is kept before lifecycle deletes it (the window to undo a delete)."
  type        = number
  default     = 30
}

variable "soft_delete_days" {
  description = "Days deleted blobs and containers stay restorable."
  type        = number
  default     = 30
}

variable "shared_key_access" {
  description = <<-EOT
    Allow account-key (shared key) authorization. drorch's Azure adapter authenticates with the
    account key (AZURE_STORAGE_KEY) until it supports Entra ID, so this defaults to true; set
    it to false once every client uses Entra ID (the identities below).
  EOT
  type        = bool
  default     = true
}

variable "allowed_ip_ranges" {
  description = "Public IP ranges (on-prem agents, the Terraform runner) allowed to reach the storage account and key vault."
  type        = list(string)
  default     = []
}

variable "dr_address_space" {
  description = "Address space of the DR virtual network."
  type        = string
  default     = "10.60.0.0/16"
}

variable "drill_address_space" {
  description = "Address space of the isolated drill virtual network (no peering, no internet egress)."
  type        = string
  default     = "10.61.0.0/16"
}

variable "dr_subnet_names" {
  description = "DR subnets (the policy's recovery subnets); each gets a twin <name>-drill in the drill network."
  type        = list(string)
  default     = ["dr-a"]
}

variable "dr_security_group_names" {
  description = "Application security groups for recovery VMs (the policy's security_groups), in both networks."
  type        = list(string)
  default     = []
}

variable "service_ports" {
  description = "TCP ports the recovered service listens on."
  type        = list(number)
  default     = [443]
}

variable "dr_ingress_cidrs" {
  description = "Who may reach the recovered service. Empty: nobody yet."
  type        = list(string)
  default     = []
}

variable "dns_zone_ids" {
  description = "Azure DNS zones (resource IDs) whose records failover switches (failover identity only)."
  type        = list(string)
  default     = []
}

variable "drill_zone_name" {
  description = "Private DNS zone of the drill network, where drills switch records."
  type        = string
  default     = "drill.drorch.internal"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
