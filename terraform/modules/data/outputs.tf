output "table_names" {
  description = "Logical table name (as in billing_core.resources) to physical name."
  value       = { for key, table in aws_dynamodb_table.this : key => table.name }
}

output "table_arns" {
  description = "Logical table name to table ARN."
  value       = { for key, table in aws_dynamodb_table.this : key => table.arn }
}

output "queue_urls" {
  description = "Logical queue name to queue URL."
  value       = { for key, queue in aws_sqs_queue.this : key => queue.url }
}

output "queue_arns" {
  description = "Logical queue name to queue ARN."
  value       = { for key, queue in aws_sqs_queue.this : key => queue.arn }
}

output "queue_names" {
  description = "Logical queue name to physical queue name."
  value       = { for key, queue in aws_sqs_queue.this : key => queue.name }
}

output "dead_letter_queue_urls" {
  description = "Logical queue name to the URL of its dead-letter queue."
  value       = { for key, queue in aws_sqs_queue.dead_letter : key => queue.url }
}

output "stripe_secret_arn" {
  description = "ARN of the Stripe secret."
  value       = aws_secretsmanager_secret.stripe.arn
}

output "stripe_secret_name" {
  description = "Name of the Stripe secret (the services' STRIPE_SECRET_ID)."
  value       = aws_secretsmanager_secret.stripe.name
}

output "kms_key_arn" {
  description = "The customer-managed key of tables, queues, secret, e-invoice files and logs."
  value       = aws_kms_key.data.arn
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms publish to."
  value       = aws_sns_topic.alarms.arn
}

output "dead_letter_queue_arns" {
  description = "Logical queue name to the ARN of its dead-letter queue."
  value       = { for key, queue in aws_sqs_queue.dead_letter : key => queue.arn }
}

output "einvoice_bucket_name" {
  description = "The e-invoice bucket (the services' EINVOICE_BUCKET)."
  value       = aws_s3_bucket.einvoices.id
  # Services get the name only once the bucket locks, encrypts and guards what they write.
  depends_on = [
    aws_s3_bucket_object_lock_configuration.einvoices,
    aws_s3_bucket_server_side_encryption_configuration.einvoices,
    aws_s3_bucket_policy.einvoices,
  ]
}

output "einvoice_bucket_arn" {
  description = "ARN of the e-invoice bucket."
  value       = aws_s3_bucket.einvoices.arn
}

output "mail_configuration_set_name" {
  description = "The SES configuration set the worker sends in (INVOICE_MAIL_CONFIGURATION_SET); null without mail_domain."
  value       = local.ses_enabled ? aws_sesv2_configuration_set.mail[0].configuration_set_name : null
  # Sends get the name only once the set reports its events.
  depends_on = [aws_sesv2_configuration_set_event_destination.mail_events, aws_sns_topic_subscription.mail_events]
}

output "mail_configuration_set_arn" {
  description = "ARN of the SES configuration set; null without mail_domain."
  value       = local.ses_enabled ? aws_sesv2_configuration_set.mail[0].arn : null
}

output "mail_identity_arn" {
  description = "ARN of the SES domain identity the invoice e-mails are sent from; null without mail_domain."
  value       = local.ses_enabled ? aws_sesv2_email_identity.mail[0].arn : null
}

output "mail_from" {
  description = "The sender address (INVOICE_MAIL_FROM); null without mail_domain."
  value       = local.ses_enabled ? var.mail_from : null
}

output "mail_dkim_tokens" {
  description = "Easy DKIM tokens of the identity: publish <token>._domainkey.<mail_domain> CNAME <token>.dkim.amazonses.com for each."
  value       = local.ses_enabled ? aws_sesv2_email_identity.mail[0].dkim_signing_attributes[0].tokens : []
}

output "ses_events_topic_arn" {
  description = "SNS topic SES publishes the configuration set's events to."
  value       = aws_sns_topic.ses_events.arn
}
