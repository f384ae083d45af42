output "load_balancer_dns_name" {
  description = "Point public_host_name here (CNAME, or a Route 53 alias with load_balancer_zone_id)."
  value       = module.alb.dns_name
}

output "load_balancer_zone_id" {
  description = "Hosted zone of the load balancer."
  value       = module.alb.zone_id
}

output "webhook_url" {
  description = "Register this endpoint in the Stripe dashboard."
  value       = "https://${var.public_host_name}/billing/webhook"
}

output "stripe_secret_name" {
  description = "Put the Stripe keys into this secret (README, \"Set the secret\")."
  value       = module.data.stripe_secret_name
}

output "user_pool_id" {
  description = "The admins' Cognito user pool."
  value       = module.cognito.user_pool_id
}

output "client_id" {
  description = "The Billing page's app client."
  value       = module.cognito.client_id
}

output "hosted_ui_url" {
  description = "Cognito hosted UI."
  value       = local.hosted_ui_url
}

output "ecr_repository_urls" {
  description = "Push the three images here, tagged with image_tag."
  value       = { for name, repository in aws_ecr_repository.service : name => repository.repository_url }
}

output "cluster_name" {
  description = "The ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "table_names" {
  description = "Logical table name to physical name."
  value       = module.data.table_names
}

output "einvoice_bucket_name" {
  description = "The e-invoice files (XRechnung, ZUGFeRD PDF) of every finalized invoice, under Object Lock."
  value       = module.data.einvoice_bucket_name
}

output "queue_urls" {
  description = "Logical queue name to queue URL."
  value       = module.data.queue_urls
}

output "invoice_mail_from" {
  description = "Sender address of the invoice e-mails."
  value       = module.data.mail_from
}

output "mail_configuration_set_name" {
  description = "SES configuration set the worker sends in; its events arrive on mail-events."
  value       = module.data.mail_configuration_set_name
}

output "mail_identity_arn" {
  description = "SES domain identity of mail_domain."
  value       = module.data.mail_identity_arn
}

output "mail_dkim_records" {
  description = "The Easy DKIM CNAME records to publish in mail_domain's DNS zone: name => value."
  value       = { for token in module.data.mail_dkim_tokens : "${token}._domainkey.${var.mail_domain}" => "${token}.dkim.amazonses.com" }
}

output "focus_export_uri" {
  description = "The FOCUS cost export's folder (FOCUS_EXPORT_URI); null with cost_source cost-explorer."
  value       = one(module.cost_export[*].export_uri)
}

output "focus_export_arn" {
  description = "The Data Exports export of the FOCUS files (aws bcm-data-exports get-export --region us-east-1); null with cost_source cost-explorer."
  value       = one(module.cost_export[*].export_arn)
}

output "focus_athena_workgroup" {
  description = "Athena workgroup of the FOCUS queries; null unless focus_engine is athena."
  value       = one(module.cost_export[*].athena_workgroup_name)
}
