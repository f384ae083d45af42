# The data plane only (tables, queues, SES events topic, secret, e-invoice bucket, Cognito), applied
# against the local AWS (moto) by tests/infra/test_terraform_apply.py to prove that the Terraform
# definitions produce exactly the resources the code and the local stack use. Never applied to a real account: the
# credentials are fake and every endpoint points at `aws_endpoint`.

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }
}

variable "aws_endpoint" {
  description = "URL of the local AWS (moto server)."
  type        = string
}

variable "region" {
  description = "Region of the local resources."
  type        = string
  default     = "eu-central-1"
}

variable "name_prefix" {
  description = "Prefix of every physical name."
  type        = string
  default     = "local-"
}

provider "aws" {
  region                      = var.region
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true # moto serves buckets under its one endpoint, not as subdomains

  endpoints {
    cloudwatch     = var.aws_endpoint
    cognitoidp     = var.aws_endpoint
    dynamodb       = var.aws_endpoint
    iam            = var.aws_endpoint
    kms            = var.aws_endpoint
    s3             = var.aws_endpoint
    secretsmanager = var.aws_endpoint
    sns            = var.aws_endpoint
    sqs            = var.aws_endpoint
    sts            = var.aws_endpoint
  }
}

module "data" {
  source = "../../modules/data"

  # No mail_domain: no SES identity, configuration set or event destination. moto (5.2.5) has SES v2
  # identities and configuration sets but no configuration-set event destinations. The ses-events
  # topic, its raw subscription to mail-events and the queue policy are applied.

  name_prefix                 = var.name_prefix
  stripe_secret_name          = "${var.name_prefix}billing/stripe"
  deletion_protection         = false
  secret_recovery_window_days = 0
}

module "cognito" {
  source = "../../modules/cognito"

  name_prefix         = var.name_prefix
  domain_prefix       = "${var.name_prefix}billing-admins"
  callback_urls       = ["http://localhost:8000/billing"]
  logout_urls         = ["http://localhost:8000/"]
  deletion_protection = false
}

output "table_names" {
  description = "Logical table name to physical name."
  value       = module.data.table_names
}

output "queue_urls" {
  description = "Logical queue name to queue URL."
  value       = module.data.queue_urls
}

output "dead_letter_queue_urls" {
  description = "Logical queue name to the URL of its dead-letter queue."
  value       = module.data.dead_letter_queue_urls
}

output "stripe_secret_name" {
  description = "Name of the Stripe secret."
  value       = module.data.stripe_secret_name
}

output "einvoice_bucket_name" {
  description = "The e-invoice bucket."
  value       = module.data.einvoice_bucket_name
}

output "ses_events_topic_arn" {
  description = "SNS topic of SES's mail events (subscribed to mail-events)."
  value       = module.data.ses_events_topic_arn
}

output "kms_key_arn" {
  description = "The data key."
  value       = module.data.kms_key_arn
}

output "user_pool_id" {
  description = "The local admins' user pool."
  value       = module.cognito.user_pool_id
}

output "client_id" {
  description = "The Billing page's app client."
  value       = module.cognito.client_id
}

output "admin_group" {
  description = "The admin group."
  value       = module.cognito.admin_group
}
