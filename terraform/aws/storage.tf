# Repository buckets (one per s3:// target bucket) and the two customer-managed KMS keys:
# "storage" encrypts objects at rest (SSE-KMS, plus the SNS topic and flow logs), "envelope"
# wraps each repository's key (drorch's kms:aws:ARN envelope: GenerateDataKey + Decrypt).

resource "aws_kms_key" "storage" {
  description             = "${var.name}: server-side encryption of drorch repositories, SNS and flow logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.storage_key.json
}

resource "aws_kms_alias" "storage" {
  name          = "alias/${var.name}-storage"
  target_key_id = aws_kms_key.storage.key_id
}

resource "aws_kms_key" "envelope" {
  count = var.envelope_key_arn == null ? 1 : 0

  description             = "${var.name}: envelope of drorch repository keys (encryption.key = kms:aws:ARN)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.envelope_key.json
}

resource "aws_kms_alias" "envelope" {
  count = var.envelope_key_arn == null ? 1 : 0

  name          = "alias/${var.name}-envelope"
  target_key_id = aws_kms_key.envelope[0].key_id
}

# Key policies delegate to IAM (the account statement); the identities get their key
# permissions from iam.tf. CloudWatch Logs encrypts the flow log groups with the storage key.
data "aws_iam_policy_document" "storage_key" {
  # A key policy's Resource "*" is the key itself, and kms:* for the account root is AWS's
  # default statement that lets IAM policies grant use of the key (iam.tf does, narrowly).
  #checkov:skip=CKV_AWS_109:key policy: Resource "*" is this key; the account statement delegates to IAM
  #checkov:skip=CKV_AWS_111:key policy: Resource "*" is this key; the account statement delegates to IAM
  #checkov:skip=CKV_AWS_356:key policy: Resource "*" is this key; the account statement delegates to IAM
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.account]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsFlowLogs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }
}

data "aws_iam_policy_document" "envelope_key" {
  # A key policy's Resource "*" is the key itself, and kms:* for the account root is AWS's
  # default statement that lets IAM policies grant use of the key (iam.tf does, narrowly).
  #checkov:skip=CKV_AWS_109:key policy: Resource "*" is this key; the account statement delegates to IAM
  #checkov:skip=CKV_AWS_111:key policy: Resource "*" is this key; the account statement delegates to IAM
  #checkov:skip=CKV_AWS_356:key policy: Resource "*" is this key; the account statement delegates to IAM
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.account]
    }
  }
}

resource "aws_s3_bucket" "repository" {
  #checkov:skip=CKV_AWS_144:drorch replicates itself (a mirror fans out to several verified targets); add a target in another region instead of S3 replication
  #checkov:skip=CKV2_AWS_62:nothing consumes object events; drorch status and verify watch the repository
  for_each = var.buckets

  bucket              = each.key
  object_lock_enabled = each.value.object_lock
}

resource "aws_s3_bucket_ownership_controls" "repository" {
  for_each = var.buckets

  bucket = aws_s3_bucket.repository[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "repository" {
  for_each = var.buckets

  bucket                  = aws_s3_bucket.repository[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "repository" {
  for_each = var.buckets

  bucket = aws_s3_bucket.repository[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "repository" {
  for_each = var.buckets

  bucket = aws_s3_bucket.repository[each.key].id
  rule {
    bucket_key_enabled = true
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.storage.arn
    }
  }
}

# WORM where the policy asks for immutable_days. drorch also sets a retention date on every
# object it writes; the default rule covers objects written by anything else (restic itself).
resource "aws_s3_bucket_object_lock_configuration" "repository" {
  for_each = local.locked_buckets

  bucket = aws_s3_bucket.repository[each.key].id
  rule {
    default_retention {
      mode = each.value.object_lock_mode
      days = each.value.retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.repository]
}

resource "aws_s3_bucket_lifecycle_configuration" "repository" {
  for_each = var.buckets

  bucket = aws_s3_bucket.repository[each.key].id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }

  # Versions become noncurrent only when drorch deletes (prune, lock files); keep them for a
  # while so a delete can be undone, then let them go. Locked versions outlive this anyway.
  rule {
    id     = "expire-deleted-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  depends_on = [aws_s3_bucket_versioning.repository]
}

resource "aws_s3_bucket_logging" "repository" {
  for_each = var.access_log_bucket == null ? {} : var.buckets

  bucket        = aws_s3_bucket.repository[each.key].id
  target_bucket = var.access_log_bucket
  target_prefix = "s3/${each.key}/"
}

data "aws_iam_policy_document" "bucket" {
  for_each = var.buckets

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.repository[each.key].arn,
      "${aws_s3_bucket.repository[each.key].arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid     = "DenyTlsBelow12"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.repository[each.key].arn,
      "${aws_s3_bucket.repository[each.key].arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "repository" {
  for_each = var.buckets

  bucket = aws_s3_bucket.repository[each.key].id
  policy = data.aws_iam_policy_document.bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.repository]
}

# Runbooks' notify steps publish here (and to var.sns_topic_arns); subscribe the on-call.
resource "aws_sns_topic" "dr" {
  name              = "${var.name}-dr"
  kms_master_key_id = aws_kms_key.storage.arn
}
