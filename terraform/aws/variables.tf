# Inputs of the AWS DR landing zone. `drorch export terraform POLICY --cloud aws` writes
# drorch.auto.tfvars.json with the values the policy knows (name, region, buckets,
# instance_types, dr_subnet_names, dr_security_group_names, envelope_key_arn); the
# rest have defaults an operator may override in another *.tfvars file.

variable "name" {
  description = "Prefix of every resource name (the policy's metadata.name)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$", var.name))
    error_message = "name must be 1-30 lowercase letters, digits and inner hyphens."
  }
}

variable "region" {
  description = "The DR region: buckets, keys, network and recovery VMs are created here."
  type        = string
}

variable "buckets" {
  description = <<-EOT
    Repository buckets by name (the s3:// targets of the policy). prefixes are the repository
    prefixes inside the bucket ("" for the whole bucket). object_lock makes the bucket WORM:
    new objects get a default retention of retention_days in object_lock_mode, and the agent
    may delete nothing but lock files. Object lock cannot be turned off once the bucket exists.
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

  validation {
    condition     = alltrue([for b in values(var.buckets) : b.retention_days >= 1])
    error_message = "retention_days must be at least 1."
  }
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which unfinished multipart uploads are aborted (their parts are billed until then)."
  type        = number
  default     = 7
}

variable "noncurrent_version_days" {
  description = <<-EOT
    Days a deleted or replaced object version is kept before lifecycle removes it. drorch never
    replaces objects; versions become noncurrent only when prune or lock cleanup deletes them,
    so this is the window to undo a mistaken or malicious delete. Locked versions are kept at
    least until their retention ends whatever this says.
  EOT
  type        = number
  default     = 30
}

variable "access_log_bucket" {
  description = "Existing bucket that receives S3 server access logs of the repository buckets; null: none."
  type        = string
  default     = null
}

variable "envelope_key_arn" {
  description = <<-EOT
    KMS key that wraps each repository key (the policy's encryption.key = kms:aws:ARN). null:
    the module creates one; its ARN is the output encryption_key, to write into the policy.
  EOT
  type        = string
  default     = null
}

variable "instance_types" {
  description = "Instance types the identities may launch (the policy's recovery instance types)."
  type        = list(string)
  default     = []
}

variable "availability_zones" {
  description = "Zones the DR and drill subnets are spread over. Empty: the region's zones a, b and c that exist."
  type        = list(string)
  default     = []
}

variable "dr_vpc_cidr" {
  description = "CIDR of the DR VPC, where failover launches recovery VMs."
  type        = string
  default     = "10.60.0.0/16"
}

variable "drill_vpc_cidr" {
  description = "CIDR of the isolated drill VPC (no route to the internet, on-prem or the DR VPC)."
  type        = string
  default     = "10.61.0.0/16"
}

variable "dr_subnet_names" {
  description = <<-EOT
    Name tags of the DR subnets (the policy's recovery subnets, by name). Each gets a twin
    "<name>-drill" in the drill VPC, where sandboxed drills launch.
  EOT
  type        = list(string)
  default     = ["dr-a", "dr-b"]
}

variable "dr_security_group_names" {
  description = "Security groups for recovery VMs (the policy's recovery security_groups), created in both VPCs."
  type        = list(string)
  default     = []
}

variable "service_ports" {
  description = "TCP ports the recovered service listens on (ingress of the DR security groups)."
  type        = list(number)
  default     = [443]
}

variable "dr_ingress_cidrs" {
  description = "Who may reach the recovered service (on-prem, VPN, load balancer subnets). Empty: nobody yet."
  type        = list(string)
  default     = []
}

variable "dns_zone_ids" {
  description = "Route53 hosted zones (IDs) whose records failover switches. Only the failover identity may change them."
  type        = list(string)
  default     = []
}

variable "drill_zone_name" {
  description = "Private hosted zone of the drill VPC, where drills may switch records."
  type        = string
  default     = "drill.drorch.internal"
}

variable "sns_topic_arns" {
  description = "Further SNS topics the runbooks notify (the module creates <name>-dr)."
  type        = list(string)
  default     = []
}

variable "agent_trusted_principals" {
  description = "IAM principals (ARNs) that may assume the agent role. Empty: principals of this account allowed to."
  type        = list(string)
  default     = []
}

variable "failover_trusted_principals" {
  description = "IAM principals (ARNs) that may assume the failover role. Empty: principals of this account allowed to."
  type        = list(string)
  default     = []
}

variable "drill_trusted_principals" {
  description = "IAM principals (ARNs) that may assume the drill role. Empty: principals of this account allowed to."
  type        = list(string)
  default     = []
}

variable "failover_require_mfa" {
  description = "The failover role can be assumed only with MFA: it can switch production DNS and stop the primary."
  type        = bool
  default     = true
}

variable "fence_tag" {
  description = "Tag of the production instances the failover role may stop (fence) before a failover."
  type = object({
    key   = string
    value = string
  })
  default = {
    key   = "drorch:fence"
    value = "allowed"
  }
}

variable "log_retention_days" {
  description = "Days VPC flow logs are kept (CloudWatch Logs)."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
