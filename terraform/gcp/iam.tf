# Two service accounts. The agent lists, reads and creates objects under the repository
# prefixes, sets retention where object lock applies, deletes lock files always and other
# objects only where no object lock applies; it uses the envelope key and switches records
# in the drill zone. The failover account adds instance administration for recovery VMs and
# the production DNS zones. GCS has no TLS-optional access: every API call is HTTPS.

resource "google_service_account" "agent" {
  account_id   = "${var.name}-drorch-agent"
  display_name = "drorch agent (${var.name}): replicate, verify, drill"
}

resource "google_service_account" "failover" {
  account_id   = "${var.name}-drorch-failover"
  display_name = "drorch failover (${var.name}): launch recovery VMs, switch DNS"
}

resource "google_service_account_iam_member" "agent_impersonation" {
  for_each = toset(var.agent_members)

  service_account_id = google_service_account.agent.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}

resource "google_service_account_iam_member" "failover_impersonation" {
  for_each = toset(var.failover_members)

  service_account_id = google_service_account.failover.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}

resource "google_project_iam_custom_role" "repository_bucket" {
  role_id     = "${local.role_stem}_drorch_bucket"
  title       = "drorch repository bucket (${var.name})"
  description = "List objects and read bucket settings (object retention) of drorch repositories"
  permissions = ["storage.buckets.get", "storage.objects.list"]
}

resource "google_project_iam_custom_role" "repository_objects" {
  role_id     = "${local.role_stem}_drorch_objects"
  title       = "drorch repository objects (${var.name})"
  description = "Read and create objects under drorch repository prefixes"
  permissions = ["storage.objects.get", "storage.objects.create"]
}

resource "google_project_iam_custom_role" "repository_retention" {
  role_id     = "${local.role_stem}_drorch_retention"
  title       = "drorch object retention (${var.name})"
  description = "Set the retention of objects drorch writes into locked repositories"
  permissions = ["storage.objects.setRetention"]
}

resource "google_project_iam_custom_role" "repository_delete" {
  role_id     = "${local.role_stem}_drorch_delete"
  title       = "drorch deletes (${var.name})"
  description = "Delete lock files, and pruned objects where no object lock applies"
  permissions = ["storage.objects.delete"]
}

locals {
  agent    = "serviceAccount:${google_service_account.agent.email}"
  failover = "serviceAccount:${google_service_account.failover.email}"
  identities = {
    agent    = local.agent
    failover = local.failover
  }
  # One binding per bucket and identity.
  bucket_members = merge([
    for b in keys(var.buckets) : { for who, member in local.identities : "${b}/${who}" => { bucket = b, member = member } }
  ]...)
  locked_members = { for k, v in local.bucket_members : k => v if var.buckets[v.bucket].object_lock }
}

resource "google_storage_bucket_iam_member" "bucket" {
  for_each = local.bucket_members

  bucket = google_storage_bucket.repository[each.value.bucket].name
  role   = google_project_iam_custom_role.repository_bucket.name
  member = each.value.member
}

resource "google_storage_bucket_iam_member" "objects" {
  for_each = local.bucket_members

  bucket = google_storage_bucket.repository[each.value.bucket].name
  role   = google_project_iam_custom_role.repository_objects.name
  member = each.value.member
  condition {
    title      = "repository prefixes"
    expression = local.repository_condition[each.value.bucket]
  }
}

resource "google_storage_bucket_iam_member" "retention" {
  for_each = local.locked_members

  bucket = google_storage_bucket.repository[each.value.bucket].name
  role   = google_project_iam_custom_role.repository_retention.name
  member = each.value.member
  condition {
    title      = "repository prefixes"
    expression = local.repository_condition[each.value.bucket]
  }
}

# Lock files always; everything under the prefix only where object lock does not apply.
resource "google_storage_bucket_iam_member" "delete" {
  for_each = local.bucket_members

  bucket = google_storage_bucket.repository[each.value.bucket].name
  role   = google_project_iam_custom_role.repository_delete.name
  member = each.value.member
  condition {
    title      = var.buckets[each.value.bucket].object_lock ? "lock files" : "repository prefixes"
    expression = var.buckets[each.value.bucket].object_lock ? local.lock_file_condition[each.value.bucket] : local.repository_condition[each.value.bucket]
  }
}

resource "google_kms_crypto_key_iam_member" "envelope" {
  for_each = local.identities

  crypto_key_id = local.envelope_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value
}

resource "google_dns_managed_zone_iam_member" "drill" {
  for_each = local.identities

  managed_zone = google_dns_managed_zone.drill.name
  role         = "roles/dns.admin"
  member       = each.value
}

resource "google_dns_managed_zone_iam_member" "production" {
  for_each = toset(var.dns_zone_names)

  managed_zone = each.value
  role         = "roles/dns.admin"
  member       = local.failover
}

resource "google_project_iam_member" "failover_compute" {
  project = local.project_id
  role    = "roles/compute.instanceAdmin.v1"
  member  = local.failover
}
