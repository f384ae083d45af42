# The e-invoice files (XRechnung XML, ZUGFeRD PDF) of every finalized invoice: the bucket the services
# know as EINVOICE_BUCKET (billing_core.resources.EINVOICE_BUCKET, prefixed). Private, encrypted with
# the data key, versioned, and under Object Lock so that no file is deleted or overwritten while the
# law asks for it to be kept.
#
# § 14b (1) UStG: invoices are kept eight years (since 2025), counted from the end of the calendar year
# the invoice was issued in. Object Lock counts from the upload, so each file is locked one year longer
# than the legal period: an invoice of 2 January is then still kept until the period's 31 December.

locals {
  einvoice_lock_years = var.einvoice_retention_years + 1
  # A version that stops being current (overwritten or deleted) has been locked since its upload, so
  # this many days later its lock has surely ended (366: every year as a leap year).
  einvoice_noncurrent_days = local.einvoice_lock_years * 366
}

resource "aws_s3_bucket" "einvoices" {
  #checkov:skip=CKV_AWS_18:Only the two task roles touch the files; server access logs would need a log bucket of their own, and CloudTrail S3 data events record who read or wrote a file where an audit needs it.
  #checkov:skip=CKV_AWS_144:Object Lock and versioning keep every file and S3 stores it across zones; a replica region would need a second key and lock, and no law asks for one.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of new files; the invoice record names its files when they are written.
  bucket              = "${var.name_prefix}billing-einvoices"
  object_lock_enabled = true
  # Never let Terraform delete issued invoices; Object Lock refuses it anyway while files are locked.
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "einvoices" {
  bucket = aws_s3_bucket.einvoices.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "einvoices" {
  bucket                  = aws_s3_bucket.einvoices.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "einvoices" {
  bucket = aws_s3_bucket.einvoices.id
  versioning_configuration {
    status = "Enabled" # Object Lock requires it
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "einvoices" {
  bucket = aws_s3_bucket.einvoices.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    bucket_key_enabled = true # one KMS call per bucket key, not per file
  }
}

resource "aws_s3_bucket_object_lock_configuration" "einvoices" {
  bucket = aws_s3_bucket.einvoices.id
  rule {
    default_retention {
      mode  = var.einvoice_retention_mode
      years = local.einvoice_lock_years
    }
  }
  depends_on = [aws_s3_bucket_versioning.einvoices]
}

# Current versions never expire: the files are the invoices. Only what is left over is cleaned up.
resource "aws_s3_bucket_lifecycle_configuration" "einvoices" {
  bucket = aws_s3_bucket.einvoices.id
  rule {
    id     = "tidy-leftovers"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = local.einvoice_noncurrent_days
    }
    expiration {
      expired_object_delete_marker = true
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.einvoices]
}

data "aws_iam_policy_document" "einvoices" {
  statement {
    sid       = "HttpsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.einvoices.arn, "${aws_s3_bucket.einvoices.arn}/*"]
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
  # Every file is encrypted (a put without encryption headers gets the default above); a put may not
  # ask for another kind of encryption (SSE-S3, DSSE-KMS) ...
  statement {
    sid       = "DenyOtherEncryption"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.einvoices.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }
    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }
  # ... nor name a KMS key other than the data key.
  statement {
    sid       = "DenyOtherKeys"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.einvoices.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = ["false"]
    }
    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.data.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "einvoices" {
  bucket     = aws_s3_bucket.einvoices.id
  policy     = data.aws_iam_policy_document.einvoices.json
  depends_on = [aws_s3_bucket_public_access_block.einvoices]
}
