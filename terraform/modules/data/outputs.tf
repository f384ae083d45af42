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
