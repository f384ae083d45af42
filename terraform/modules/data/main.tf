# The data plane: DynamoDB tables, SQS queues with dead-letter queues, the Stripe secret, the
# e-invoice bucket (einvoices.tf), the SES identity and configuration set whose events reach the
# mail-events queue (mail.tf), one customer-managed KMS key for all of them, and an alarm when
# anything lands in a dead-letter queue.
#
# The table and queue definitions below mirror services/billing_core/resources.py, the one
# definition the code and the local stack use; tests/infra/test_terraform_apply.py applies this
# module against moto and fails if the two ever differ (keys, indexes, TTL, redrive, timeouts).

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  tables = {
    # One item per account and invoice; invoiceId is deterministic per account and period.
    "billing" = {
      hash_key  = "userId"
      range_key = "invoiceId"
      indexes   = { byStripeInvoiceId = { hash_key = "stripeInvoiceId", range_key = null } }
      ttl       = null
    }
    # One item per account: Stripe customer, default payment method, display fields.
    "payment-methods" = {
      hash_key  = "userId"
      range_key = null
      indexes   = { byStripeCustomerId = { hash_key = "stripeCustomerId", range_key = null } }
      ttl       = null
    }
    # Processed Stripe event ids, run / lease records and rates (old items expire by TTL), and the
    # audit log, listed per stream ("all", "account#<id>") newest first through its sparse index.
    "events" = {
      hash_key  = "pk"
      range_key = null
      indexes   = { byAuditStream = { hash_key = "auditStream", range_key = "auditAt" } }
      ttl       = "expiresAt"
    }
  }

  queues = {
    # Short visibility, extended by the worker while it works; maxReceiveCount is only the backstop for a
    # message that kills its worker (poison messages are dead-lettered by the worker, with their reason).
    "billing-jobs"  = { visibility_timeout_seconds = 30, max_receive_count = 10 }
    "stripe-events" = { visibility_timeout_seconds = 30, max_receive_count = 10 }
    # One message per document (invoice or credit note) to e-mail; the worker sends it, paced to SES's rate.
    "document-mail" = { visibility_timeout_seconds = 30, max_receive_count = 10 }
    # SES's bounce, complaint, delivery and reject events, from the configuration set through SNS (mail.tf).
    "mail-events" = { visibility_timeout_seconds = 30, max_receive_count = 10 }
  }
  message_retention_seconds = 4 * 24 * 3600
  dlq_retention_seconds     = 14 * 24 * 3600
  # Pinned, on queues and DLQs alike: the webhook receiver queues events over 250 KiB as claim checks.
  max_message_size = 256 * 1024

  account_id = data.aws_caller_identity.current.account_id
}

# --- KMS -------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:A key policy's "*" resource means this key only; it grants nothing on other resources.
  #checkov:skip=CKV_AWS_356:A key policy's "*" resource means this key only.
  #checkov:skip=CKV_AWS_109:The account root administers its own key (AWS's default key policy); IAM policies then grant use per role.
  # The account administers the key (IAM policies grant its use to each task role).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"]
    }
  }
  # CloudWatch Logs encrypts the services' log groups of this account with it.
  statement {
    sid       = "CloudWatchLogsEncrypt"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${local.account_id}:*"]
    }
  }
  # CloudWatch alarms publish to the encrypted alarm topic.
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
  # SES publishes its events to the encrypted ses-events topic (mail.tf): a publisher to an encrypted
  # topic needs these two on its key. SNS binds each data key to its topic (encryption context).
  statement {
    sid       = "SesPublishesMailEvents"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["ses.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:sns:topicArn"
      values   = [local.ses_events_topic_arn]
    }
  }
  # AWS Data Exports writes the FOCUS cost export (module cost_export) to a bucket encrypted with this
  # key: a writer under SSE-KMS needs GenerateDataKey, and Decrypt for a multipart upload (S3). Only
  # for that bucket's objects: S3 names the bucket in every request's encryption context (the bucket's
  # ARN under a bucket key, else the object's).
  dynamic "statement" {
    for_each = var.cost_export_bucket_name == null ? [] : [var.cost_export_bucket_name]
    content {
      sid       = "DataExportsEncryptCostExport"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = ["*"]
      principals {
        type        = "Service"
        identifiers = ["bcm-data-exports.amazonaws.com", "billingreports.amazonaws.com"]
      }
      condition {
        test     = "StringLike"
        variable = "kms:EncryptionContext:aws:s3:arn"
        values = [
          "arn:${data.aws_partition.current.partition}:s3:::${statement.value}",
          "arn:${data.aws_partition.current.partition}:s3:::${statement.value}/*",
        ]
      }
    }
  }
  # SNS delivers those events to the encrypted mail-events queue. Which topic may send there is the
  # queue policy's to say (mail.tf); this only lets SNS encrypt what it is allowed to send.
  statement {
    sid       = "SnsDeliversToQueues"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "data" {
  description             = "${var.name_prefix}billing data: tables, queues, topics, Stripe secret, e-invoice files, logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "data" {
  name          = "alias/${var.name_prefix}billing-data"
  target_key_id = aws_kms_key.data.key_id
}

# --- DynamoDB --------------------------------------------------------------------------------------

resource "aws_dynamodb_table" "this" {
  for_each = local.tables

  name                        = "${var.name_prefix}${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash_key
  range_key                   = each.value.range_key
  deletion_protection_enabled = var.deletion_protection

  dynamic "attribute" {
    for_each = toset(compact(concat(
      [each.value.hash_key, each.value.range_key],
      flatten([for index in values(each.value.indexes) : [index.hash_key, index.range_key]]),
    )))
    content {
      name = attribute.value
      type = "S"
    }
  }

  dynamic "global_secondary_index" {
    for_each = each.value.indexes
    content {
      name            = global_secondary_index.key
      hash_key        = global_secondary_index.value.hash_key
      range_key       = global_secondary_index.value.range_key
      projection_type = "ALL"
    }
  }

  dynamic "ttl" {
    for_each = each.value.ttl == null ? [] : [each.value.ttl]
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.data.arn
  }
}

# --- SQS -------------------------------------------------------------------------------------------

resource "aws_sqs_queue" "dead_letter" {
  for_each = local.queues

  name                              = "${var.name_prefix}${each.key}-dlq"
  message_retention_seconds         = local.dlq_retention_seconds
  max_message_size                  = local.max_message_size
  kms_master_key_id                 = aws_kms_key.data.arn
  kms_data_key_reuse_period_seconds = 3600
}

resource "aws_sqs_queue" "this" {
  for_each = local.queues

  name                              = "${var.name_prefix}${each.key}"
  visibility_timeout_seconds        = each.value.visibility_timeout_seconds
  message_retention_seconds         = local.message_retention_seconds
  max_message_size                  = local.max_message_size
  receive_wait_time_seconds         = 20
  kms_master_key_id                 = aws_kms_key.data.arn
  kms_data_key_reuse_period_seconds = 3600 # fewer KMS calls: cheaper, same protection at rest
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter[each.key].arn
    maxReceiveCount     = each.value.max_receive_count
  })
}

# --- Alarms ----------------------------------------------------------------------------------------

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}billing-alarms"
  kms_master_key_id = aws_kms_key.data.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# A message in a dead-letter queue is a job, event or mail its consumer gave up on (or that killed it ten times).
resource "aws_cloudwatch_metric_alarm" "dead_letter_depth" {
  for_each = local.queues

  alarm_name          = "${var.name_prefix}${each.key}-dlq-not-empty"
  alarm_description   = "Messages in ${aws_sqs_queue.dead_letter[each.key].name}: inspect, fix, then redrive them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letter[each.key].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# --- Secrets Manager -------------------------------------------------------------------------------

# Only the container: the values are put outside Terraform (README, "Set the secret"), so they
# never appear in the Terraform state or plan.
resource "aws_secretsmanager_secret" "stripe" {
  #checkov:skip=CKV2_AWS_57:Stripe keys are rolled in the Stripe dashboard, then put here (README); no rotation Lambda can create Stripe keys.
  name                    = var.stripe_secret_name
  description             = "Stripe keys: JSON {secret_key, publishable_key, webhook_secrets: [current, previous]}"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = var.secret_recovery_window_days
}
