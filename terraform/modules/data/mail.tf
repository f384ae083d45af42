# Invoice e-mail through Amazon SES (API v2): the sending domain (Easy DKIM), one configuration set the
# worker sends in, and its bounce, complaint, delivery and reject events, published to the SNS topic
# ses-events, which delivers them unchanged (raw) to the mail-events queue.
#
#   worker --SendEmail--> SES (identity mail_domain, configuration set) --events--> SNS ses-events
#          --raw message delivery--> SQS mail-events --> worker
#
# Without mail_domain the module creates no SES resources (the topic, its subscription and the queue
# policy it still creates): local-data leaves it unset, as moto has no configuration-set event
# destinations.

locals {
  ses_enabled            = var.mail_domain != null
  configuration_set_name = "${var.name_prefix}billing-mail"
  # Built from the names, not taken from the resources: the key policy (main.tf) and the topic policy
  # name them before either exists, and the policies hold without SES too.
  configuration_set_arn = "arn:${data.aws_partition.current.partition}:ses:${data.aws_region.current.name}:${local.account_id}:configuration-set/${local.configuration_set_name}"
  ses_events_topic_name = "${var.name_prefix}ses-events"
  ses_events_topic_arn  = "arn:${data.aws_partition.current.partition}:sns:${data.aws_region.current.name}:${local.account_id}:${local.ses_events_topic_name}"
  # The provider's names of the SES v2 event types (aws_sesv2_configuration_set_event_destination).
  mail_event_types = ["BOUNCE", "COMPLAINT", "DELIVERY", "REJECT"]
}

# --- SES -------------------------------------------------------------------------------------------

resource "aws_sesv2_configuration_set" "mail" {
  count                  = local.ses_enabled ? 1 : 0
  configuration_set_name = local.configuration_set_name

  # Invoices carry names, addresses and amounts: SES delivers them only over TLS. A receiving server
  # without STARTTLS gets no mail; SES reports that as a bounce on mail-events.
  delivery_options {
    tls_policy = "REQUIRE"
  }
  reputation_options {
    reputation_metrics_enabled = true
  }
  sending_options {
    sending_enabled = true
  }
  # An address that bounced hard or complained is put on the account's suppression list: SES does not
  # send there again (and reports it) until someone removes it.
  suppression_options {
    suppressed_reasons = ["BOUNCE", "COMPLAINT"]
  }
}

resource "aws_sesv2_email_identity" "mail" {
  count          = local.ses_enabled ? 1 : 0
  email_identity = var.mail_domain
  # The set is named in every send too; this is the identity's default for any send that does not.
  configuration_set_name = aws_sesv2_configuration_set.mail[0].configuration_set_name

  # Easy DKIM: SES keeps the key pair; publish the three CNAMEs of dkim_tokens (README, "E-mail (SES)").
  dkim_signing_attributes {
    next_signing_key_length = "RSA_2048_BIT"
  }

  lifecycle {
    precondition {
      condition     = var.mail_from != null && endswith(lower(coalesce(var.mail_from, "-")), "@${lower(var.mail_domain)}")
      error_message = "mail_from must be an address of mail_domain (the identity SES sends from)."
    }
  }
}

resource "aws_sesv2_configuration_set_event_destination" "mail_events" {
  count                  = local.ses_enabled ? 1 : 0
  configuration_set_name = aws_sesv2_configuration_set.mail[0].configuration_set_name
  event_destination_name = "mail-events"

  event_destination {
    enabled              = true
    matching_event_types = local.mail_event_types
    sns_destination {
      topic_arn = aws_sns_topic.ses_events.arn
    }
  }

  # SES checks that it may publish when the destination is created.
  depends_on = [aws_sns_topic_policy.ses_events]
}

# --- SNS: SES events -> mail-events ----------------------------------------------------------------

# Standard, not FIFO: SES publishes to standard topics only. Encrypted with the data key, which lets
# SES publish to it (key policy, main.tf).
resource "aws_sns_topic" "ses_events" {
  name              = local.ses_events_topic_name
  kms_master_key_id = aws_kms_key.data.arn
}

data "aws_iam_policy_document" "ses_events" {
  # Only SES, and only for this account's configuration set.
  statement {
    sid       = "SesPublishes"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.ses_events.arn]
    principals {
      type        = "Service"
      identifiers = ["ses.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.configuration_set_arn]
    }
  }
}

resource "aws_sns_topic_policy" "ses_events" {
  arn    = aws_sns_topic.ses_events.arn
  policy = data.aws_iam_policy_document.ses_events.json
}

# Raw message delivery: the queue message is SES's event JSON itself, not wrapped in an SNS envelope.
resource "aws_sns_topic_subscription" "mail_events" {
  topic_arn            = aws_sns_topic.ses_events.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.this["mail-events"].arn
  raw_message_delivery = true

  depends_on = [aws_sqs_queue_policy.mail_events]
}

data "aws_iam_policy_document" "mail_events_queue" {
  # The topic may put SES's events on the queue; nothing else gets access through this policy (the
  # worker's role grants its own).
  statement {
    sid       = "SesEventsTopicSends"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this["mail-events"].arn]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.ses_events.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "mail_events" {
  queue_url = aws_sqs_queue.this["mail-events"].id
  policy    = data.aws_iam_policy_document.mail_events_queue.json
}
