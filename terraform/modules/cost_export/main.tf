# The FOCUS cost export: AWS Data Exports delivers the account's costs as FOCUS 1.2 (with AWS
# columns) in Parquet to a bucket of this stack, the billing's second cost source besides Cost
# Explorer (COST_SOURCE=focus). Optionally (athena.tf) a Glue table over the files and an Athena
# workgroup to query them with (FOCUS_ENGINE=athena); without it the services read the files
# themselves (FOCUS_ENGINE=duckdb).
#
# AWS writes the export below s3://<bucket>/<prefix>/<export-name>/ (AWS Data Exports, "Understanding
# export delivery"):
#   data/BILLING_PERIOD=YYYY-MM/...parquet                    the files of each billing period
#   metadata/BILLING_PERIOD=YYYY-MM/<export-name>-Manifest.json which files make up the last refresh
# With OVERWRITE_REPORT each refresh of a period replaces that period's files (several times a day,
# until the month is final), so the folder always holds each period once.
#
# The Data Exports API is in us-east-1 only: the export is created through the aws.data_exports
# provider; the bucket (s3_region) stays in the stack's region, next to the tasks that read it.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id  = data.aws_caller_identity.current.account_id
  partition   = data.aws_partition.current.partition
  export_name = "${var.name_prefix}billing-focus"
  # The export's folder is <prefix>/<export-name>; its name is also the path Data Exports writes to.
  s3_prefix     = "focus"
  export_folder = "${local.s3_prefix}/${local.export_name}"
  # Built from the name, not taken from the resource: the task roles' policies (iam.tf) and the key
  # policy (module data) hold before the bucket exists, and a plan shows them in full.
  bucket_arn = "arn:${local.partition}:s3:::${var.bucket_name}"

  # The columns the billing reads (services/billing_core/adapters/focus_export.py), and a few that
  # make a line explainable (who provided and published it, which account paid, which commitment
  # covered it). One list for the export's query and the Glue table (athena.tf), so the two cannot
  # drift apart. Types: the FOCUS 1.2 with AWS columns dictionary (costs are doubles, the periods
  # timestamps in milliseconds, Tags a map of strings).
  columns = [
    { name = "BilledCost", type = "double" },
    { name = "EffectiveCost", type = "double" },
    { name = "BillingCurrency", type = "string" },
    { name = "BillingPeriodStart", type = "timestamp" },
    { name = "BillingPeriodEnd", type = "timestamp" },
    { name = "ChargeCategory", type = "string" },
    { name = "ChargeClass", type = "string" },
    { name = "ChargePeriodStart", type = "timestamp" },
    { name = "ChargePeriodEnd", type = "timestamp" },
    { name = "InvoiceId", type = "string" },
    { name = "InvoiceIssuerName", type = "string" },
    { name = "ProviderName", type = "string" },
    { name = "PublisherName", type = "string" },
    { name = "ServiceName", type = "string" },
    { name = "BillingAccountId", type = "string" },
    { name = "SubAccountId", type = "string" },
    { name = "CommitmentDiscountId", type = "string" },
    { name = "CommitmentDiscountStatus", type = "string" },
    { name = "Tags", type = "map<string,string>" },
  ]
  focus_table = "FOCUS_1_2_AWS"
  # DAILY: the billing sums whole months and the preview the month to date; hourly lines would make
  # the files about 24 times larger for nothing (TIME_GRANULARITY: HOURLY, DAILY or MONTHLY).
  time_granularity = "DAILY"
  # Noncurrent versions are the files a refresh replaced: kept a month to recover from a bad delivery.
  replaced_file_days = 30
}

# --- the export's bucket -----------------------------------------------------------------------------

resource "aws_s3_bucket" "export" {
  #checkov:skip=CKV_AWS_18:Only AWS Data Exports writes and only the two task roles read; server access logs would need a log bucket of their own, and CloudTrail S3 data events record access where an audit needs it.
  #checkov:skip=CKV_AWS_144:AWS can deliver the whole export again (a backfill through AWS Support); a replica would need a second key and bucket for data AWS itself keeps.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new export files; readers find each period through its manifest.
  bucket = var.bucket_name
  # The export holds AWS's cost data of past months: terraform destroy stops at a bucket that still holds it.
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "export" {
  bucket = aws_s3_bucket.export.id
  rule {
    object_ownership = "BucketOwnerEnforced" # the account owns every file AWS delivers; no ACLs
  }
}

resource "aws_s3_bucket_public_access_block" "export" {
  bucket                  = aws_s3_bucket.export.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "export" {
  bucket = aws_s3_bucket.export.id
  versioning_configuration {
    status = "Enabled" # a refresh that went wrong, or a deletion, can be undone for replaced_file_days
  }
}

# The data key, as for the e-invoice files: a file put without encryption headers of its own gets
# this default. The key policy (module data) lets Data Exports use the key for this bucket only.
resource "aws_s3_bucket_server_side_encryption_configuration" "export" {
  bucket = aws_s3_bucket.export.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true # one KMS call per bucket key, not per file: a refresh writes many
  }
}

# Current files never expire here: Data Exports replaces a period's files itself, and the billing
# re-reads earlier months for corrections. Replaced versions go after a month.
resource "aws_s3_bucket_lifecycle_configuration" "export" {
  bucket = aws_s3_bucket.export.id
  rule {
    id     = "replaced-files"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = local.replaced_file_days
    }
    expiration {
      expired_object_delete_marker = true
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.export]
}

data "aws_iam_policy_document" "export_bucket" {
  # Exactly the statement AWS Data Exports requires ("Setting up an Amazon S3 bucket for data
  # exports"): both billing principals may write the files and read this policy (Data Exports checks
  # it before every delivery), and only for exports and reports of this account. Changing it stops
  # the deliveries, so it is kept as AWS documents it (the whole bucket, StringLike).
  statement {
    sid       = "EnableAWSDataExportsToWriteToS3AndCheckPolicy"
    actions   = ["s3:PutObject", "s3:GetBucketPolicy"]
    resources = [local.bucket_arn, "${local.bucket_arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["billingreports.amazonaws.com", "bcm-data-exports.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "StringLike"
      variable = "aws:SourceArn"
      values = [
        "arn:${local.partition}:cur:us-east-1:${local.account_id}:definition/*",
        "arn:${local.partition}:bcm-data-exports:us-east-1:${local.account_id}:export/*",
      ]
    }
  }
  # No deny of other encryption headers (as on the e-invoice bucket): what Data Exports sends is not
  # documented, and a refused put would stop the deliveries without any error here.
  statement {
    sid       = "HttpsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.bucket_arn, "${local.bucket_arn}/*"]
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
}

resource "aws_s3_bucket_policy" "export" {
  bucket     = aws_s3_bucket.export.id
  policy     = data.aws_iam_policy_document.export_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.export]
}

# --- the export ----------------------------------------------------------------------------------------

resource "aws_bcmdataexports_export" "focus" {
  provider = aws.data_exports

  export {
    name        = local.export_name
    description = "FOCUS 1.2 cost data of the billing (COST_SOURCE=focus)"

    data_query {
      query_statement = "SELECT ${join(", ", [for column in local.columns : column.name])} FROM ${local.focus_table}"
      table_configurations = {
        (local.focus_table) = { TIME_GRANULARITY = local.time_granularity }
      }
    }

    destination_configurations {
      s3_destination {
        s3_bucket = aws_s3_bucket.export.id
        s3_prefix = local.s3_prefix
        s3_region = data.aws_region.current.name
        s3_output_configurations {
          format      = "PARQUET"
          compression = "PARQUET" # Parquet's own (column) compression; the only one Parquet takes
          overwrite   = "OVERWRITE_REPORT"
          output_type = "CUSTOM"
        }
      }
    }

    # SYNCHRONOUS: refreshed whenever AWS updates the account's cost data (several times a day).
    refresh_cadence {
      frequency = "SYNCHRONOUS"
    }
  }

  # Data Exports checks the bucket policy when the export is created; the files it then writes need
  # the default encryption.
  depends_on = [
    aws_s3_bucket_policy.export,
    aws_s3_bucket_server_side_encryption_configuration.export,
    aws_s3_bucket_ownership_controls.export,
  ]
}
