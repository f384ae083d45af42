# Athena over the export (athena_enabled, FOCUS_ENGINE=athena): for an export too large for a task to
# read itself. A Glue table describes the Parquet files, a workgroup runs the services' queries with
# an enforced result location, encryption and per-query scan limit, and the results expire.
#
# The table's partition billing_period is projected (Athena computes each month's folder from the
# template below) instead of registered: a new month's folder is queryable the moment AWS delivers
# it, with no crawler and no partition to add.

locals {
  athena_count = var.athena_enabled ? 1 : 0
  # Glue and Athena names: lower case and underscores (a hyphen would need quoting in every query).
  database_name       = "${replace(var.name_prefix, "-", "_")}billing_focus"
  table_name          = "focus"
  workgroup_name      = "${var.name_prefix}billing-focus"
  results_bucket_name = "${var.bucket_name}-athena"
  results_bucket_arn  = "arn:${local.partition}:s3:::${local.results_bucket_name}"
  results_prefix      = "results"
  # Athena writes every query's result (and its metadata) there; the services read it back at once
  # through GetQueryResults, so a week is plenty to look into a query afterwards.
  results_expiry_days = 7
  data_location       = "s3://${var.bucket_name}/${local.export_folder}/data/"
  # The folder of each period, as AWS Data Exports documents it: data/BILLING_PERIOD=YYYY-MM/
  # ("Understanding export delivery"). Athena finds nothing in a month whose folder is named otherwise.
  partition_folder = "BILLING_PERIOD"
  # Three years back: more than the billing re-reads, and room for a backfill; no month after NOW exists.
  projected_periods = "NOW-3YEARS,NOW"
}

resource "aws_glue_catalog_database" "focus" {
  count       = local.athena_count
  name        = local.database_name
  description = "The billing's FOCUS cost export (AWS Data Exports) for Athena"
}

resource "aws_glue_catalog_table" "focus" {
  count         = local.athena_count
  name          = local.table_name
  database_name = aws_glue_catalog_database.focus[0].name
  description   = "FOCUS 1.2 with AWS columns, as delivered by AWS Data Exports to ${local.data_location}"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL                                  = "TRUE"
    classification                            = "parquet"
    "projection.enabled"                      = "true"
    "projection.billing_period.type"          = "date"
    "projection.billing_period.format"        = "yyyy-MM"
    "projection.billing_period.range"         = local.projected_periods
    "projection.billing_period.interval"      = "1"
    "projection.billing_period.interval.unit" = "MONTHS"
    # $${...} is Athena's placeholder, not Terraform's.
    "storage.location.template" = "${local.data_location}${local.partition_folder}=$${billing_period}"
  }

  # A string, as Athena projects a date partition by its formatted value: WHERE billing_period = '2025-01'.
  partition_keys {
    name = "billing_period"
    type = "string"
  }

  storage_descriptor {
    location      = local.data_location
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters            = { "serialization.format" = "1" }
    }

    # Glue keeps column names in lower case; Athena matches them to the Parquet columns by name.
    dynamic "columns" {
      for_each = local.columns
      content {
        name = lower(columns.value.name)
        type = columns.value.type
      }
    }
  }
}

# --- query results -------------------------------------------------------------------------------------

resource "aws_s3_bucket" "athena_results" {
  #checkov:skip=CKV_AWS_18:Only the two task roles write here, through Athena; server access logs would need a log bucket of their own for files that expire in a week.
  #checkov:skip=CKV_AWS_144:Query results are recomputed by running the query again; a replica would keep what the expiry removes.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new query results; the services fetch each one through GetQueryResults.
  #checkov:skip=CKV_AWS_21:Query results are recomputed by running the query again; versions would only keep what the expiry is there to remove.
  count  = local.athena_count
  bucket = local.results_bucket_name
  # Only week-old query results: a destroy may take them along.
  force_destroy = true
}

resource "aws_s3_bucket_ownership_controls" "athena_results" {
  count  = local.athena_count
  bucket = aws_s3_bucket.athena_results[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "athena_results" {
  count                   = local.athena_count
  bucket                  = aws_s3_bucket.athena_results[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "athena_results" {
  count  = local.athena_count
  bucket = aws_s3_bucket.athena_results[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "athena_results" {
  count  = local.athena_count
  bucket = aws_s3_bucket.athena_results[0].id
  rule {
    id     = "expire-results"
    status = "Enabled"
    filter {}
    expiration {
      days = local.results_expiry_days
    }
    # A cancelled query (the scan limit) can leave an unfinished multipart upload behind (Athena).
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "athena_results" {
  count = local.athena_count
  statement {
    sid       = "HttpsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.results_bucket_arn, "${local.results_bucket_arn}/*"]
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

resource "aws_s3_bucket_policy" "athena_results" {
  count      = local.athena_count
  bucket     = aws_s3_bucket.athena_results[0].id
  policy     = data.aws_iam_policy_document.athena_results[0].json
  depends_on = [aws_s3_bucket_public_access_block.athena_results]
}

# --- the workgroup ---------------------------------------------------------------------------------------

resource "aws_athena_workgroup" "focus" {
  count       = local.athena_count
  name        = local.workgroup_name
  description = "The billing's queries of the FOCUS cost export"
  state       = "ENABLED"

  configuration {
    # The services cannot choose another result location, encryption or scan limit per query.
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    # A query that would scan more (a missing billing_period filter) is cancelled instead of billed on.
    bytes_scanned_cutoff_per_query = var.athena_bytes_scanned_cutoff_per_query

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location       = "s3://${local.results_bucket_name}/${local.results_prefix}/"
      expected_bucket_owner = local.account_id
      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }

  depends_on = [
    aws_s3_bucket_policy.athena_results,
    aws_s3_bucket_server_side_encryption_configuration.athena_results,
  ]
}
