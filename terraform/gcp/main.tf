# DR landing zone for drorch on Google Cloud: repository buckets, Cloud KMS keys, the agent
# and failover service accounts (iam.tf), the DR network and its isolated drill twin
# (network.tf).

data "google_project" "current" {
  project_id = var.project_id
}

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

locals {
  labels     = merge({ "drorch-managed-by" = "terraform-gcp", "drorch-name" = var.name }, var.labels)
  project_id = data.google_project.current.project_id
  role_stem  = replace(var.name, "-", "_")

  # Repository prefixes by bucket: "" is the whole bucket, "shop" becomes "shop/".
  paths = { for b, cfg in var.buckets : b => distinct([for p in cfg.prefixes : trim(p, "/") == "" ? "" : "${trim(p, "/")}/"]) }

  # IAM conditions on object names; "projects/_/buckets/B/objects/" + path is a prefix match.
  repository_condition = { for b, paths in local.paths : b => join(" || ", [for p in paths : "resource.name.startsWith(\"projects/_/buckets/${b}/objects/${p}\")"]) }
  lock_file_condition  = { for b, paths in local.paths : b => join(" || ", [for p in paths : "resource.name.startsWith(\"projects/_/buckets/${b}/objects/${p}locks/\")"]) }
  locked_buckets       = { for b, cfg in var.buckets : b => cfg if cfg.object_lock }

  envelope_key_name = var.envelope_key_name != null ? var.envelope_key_name : google_kms_crypto_key.envelope[0].id
}

# ------------------------------------------------------------------------------------ KMS

resource "google_kms_key_ring" "drorch" {
  name     = "${var.name}-drorch"
  location = var.region
}

resource "google_kms_crypto_key" "storage" {
  name            = "${var.name}-storage"
  key_ring        = google_kms_key_ring.drorch.id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = var.key_rotation_period

  version_template {
    algorithm        = "GOOGLE_SYMMETRIC_ENCRYPTION"
    protection_level = "HSM"
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key" "envelope" {
  count = var.envelope_key_name == null ? 1 : 0

  name            = "${var.name}-envelope"
  key_ring        = google_kms_key_ring.drorch.id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = var.key_rotation_period

  version_template {
    algorithm        = "GOOGLE_SYMMETRIC_ENCRYPTION"
    protection_level = "HSM"
  }

  lifecycle {
    prevent_destroy = true
  }
}

# Cloud Storage encrypts the buckets with the storage key on the project's behalf.
resource "google_kms_crypto_key_iam_member" "gcs_uses_storage_key" {
  crypto_key_id = google_kms_crypto_key.storage.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# -------------------------------------------------------------------------------- buckets

resource "google_storage_bucket" "repository" {
  for_each = var.buckets

  name                        = each.key
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  enable_object_retention     = each.value.object_lock
  force_destroy               = false

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.storage.id
  }

  # A deleted object (prune, lock files) stays restorable this long.
  soft_delete_policy {
    retention_duration_seconds = min(max(each.value.retention_days, 7), 90) * 86400
  }

  lifecycle_rule {
    condition {
      age = var.abort_incomplete_multipart_days
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  dynamic "logging" {
    for_each = var.access_log_bucket == null ? [] : [var.access_log_bucket]
    content {
      log_bucket        = logging.value
      log_object_prefix = "gcs/${each.key}/"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs_uses_storage_key]
}
