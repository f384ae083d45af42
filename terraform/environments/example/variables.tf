variable "region" {
  description = "AWS region of the whole stack."
  type        = string
  default     = "eu-central-1"
}

variable "environment" {
  description = "Environment name; prefixes every physical name (\"prod\" gives the table \"prod-billing\")."
  type        = string
  default     = "prod"
}

variable "availability_zones" {
  description = "Two zones of the region."
  type        = list(string)
  default     = ["eu-central-1a", "eu-central-1b"]
}

variable "certificate_arn" {
  description = "ACM certificate (same region) of public_host_name."
  type        = string
}

variable "public_host_name" {
  description = "Host name the admins and Stripe use, e.g. billing.example.com (point it at the load balancer)."
  type        = string
}

variable "cognito_domain_prefix" {
  description = "Hosted UI domain prefix (globally unique in the region)."
  type        = string
}

variable "image_tag" {
  description = "Tag of the three images in their ECR repositories (push them before apply)."
  type        = string
}

variable "alarm_email" {
  description = "E-mail address for alarms (messages in a dead-letter queue); null for none."
  type        = string
  default     = null
}

variable "worker_max_count" {
  description = "Most scheduler-worker tasks when billing-jobs backs up."
  type        = number
  default     = 4
}

variable "billing_currency" {
  description = "Invoice currency (the services' BILLING_CURRENCY)."
  type        = string
  default     = "eur"
}
