# Inputs of the GCP DR landing zone. `drorch export terraform POLICY --cloud gcp` writes
# drorch.auto.tfvars.json with the values the policy knows (name, region, buckets,
# dr_subnet_names, dr_security_group_names, envelope_key_name); the rest have defaults.

variable "name" {
  description = "Prefix of every resource name (the policy's metadata.name)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,12}[a-z0-9])?$", var.name))
    error_message = "name must start with a letter and be 1-14 lowercase letters, digits and inner hyphens (service account IDs are at most 30 characters)."
  }
}

variable "region" {
  description = "The DR region: buckets, keys and the networks' subnets are created here."
  type        = string
}

variable "project_id" {
  description = "Project to create everything in. null: the provider's default (GOOGLE_PROJECT, gcloud config)."
  type        = string
  default     = null
}

variable "buckets" {
  description = <<-EOT
    Repository buckets by name (the gs:// targets of the policy). prefixes are the repository
    prefixes inside the bucket ("" for the whole bucket). object_lock enables per-object
    retention, which drorch sets on every object it writes (immutable_days, Locked for
    COMPLIANCE); the agent may then delete nothing but lock files. retention_days is also the
    soft-delete window of the bucket (clamped to the 7-90 days GCS allows).
  EOT
  type = map(object({
    prefixes         = optional(list(string), [""])
    object_lock      = optional(bool, false)
    retention_days   = optional(number, 30)
    object_lock_mode = optional(string, "COMPLIANCE")
  }))
  default = {}

  validation {
    condition     = alltrue([for b in values(var.buckets) : contains(["COMPLIANCE", "GOVERNANCE"], b.object_lock_mode)])
    error_message = "object_lock_mode must be COMPLIANCE or GOVERNANCE."
  }
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which unfinished multipart uploads are aborted."
  type        = number
  default     = 7
}

variable "noncurrent_version_days" {
  description = "Days a deleted object version is kept before lifecycle removes it (the window to undo a delete)."
  type        = number
  default     = 30
}

variable "access_log_bucket" {
  description = "Existing bucket that receives usage logs of the repository buckets; null: none."
  type        = string
  default     = null
}

variable "envelope_key_name" {
  description = <<-EOT
    Cloud KMS key wrapping each repository key (the policy's encryption.key = kms:gcp:NAME).
    null: the module creates one; its name is the output encryption_key.
  EOT
  type        = string
  default     = null
}

variable "key_rotation_period" {
  description = "Rotation period of the module's KMS keys."
  type        = string
  default     = "7776000s"
}

variable "dr_cidr" {
  description = "Address range the DR subnets are carved from (/24 each)."
  type        = string
  default     = "10.60.0.0/16"
}

variable "drill_cidr" {
  description = "Address range the isolated drill subnets are carved from (/24 each)."
  type        = string
  default     = "10.61.0.0/16"
}

variable "dr_subnet_names" {
  description = "DR subnets (the policy's recovery subnets); each gets a twin <name>-drill in the drill network."
  type        = list(string)
  default     = ["dr-a"]
}

variable "dr_security_group_names" {
  description = "Network tags of recovery VMs (the policy's security_groups): firewall rules target them."
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

variable "dns_zone_names" {
  description = "Cloud DNS managed zones whose records failover switches (failover identity only)."
  type        = list(string)
  default     = []
}

variable "drill_zone_dns_name" {
  description = "Private DNS zone of the drill network, where drills switch records."
  type        = string
  default     = "drill.drorch.internal."
}

variable "agent_members" {
  description = "Members allowed to act as the agent service account (roles/iam.serviceAccountTokenCreator)."
  type        = list(string)
  default     = []
}

variable "failover_members" {
  description = "Members allowed to act as the failover service account."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels added to every resource."
  type        = map(string)
  default     = {}
}
