variable "name_prefix" {
  description = "Prefix of every physical name, e.g. \"prod-\" gives the table \"prod-billing\"."
  type        = string
}

variable "stripe_secret_name" {
  description = "Name of the Secrets Manager secret with the Stripe keys (the services' STRIPE_SECRET_ID)."
  type        = string
  default     = "billing/stripe"
}

variable "deletion_protection" {
  description = "Protect the tables from deletion (turn off only for throw-away environments)."
  type        = bool
  default     = true
}

variable "secret_recovery_window_days" {
  description = "Days a deleted Stripe secret can still be restored (0 deletes at once)."
  type        = number
  default     = 30
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (messages in a dead-letter queue); null for none."
  type        = string
  default     = null
}
