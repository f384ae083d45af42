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

variable "einvoice_retention_years" {
  description = "Legal keeping period of the e-invoice files in years (§ 14b UStG: eight since 2025). It starts at the end of the invoice's calendar year, so Object Lock keeps each file one year longer than this."
  type        = number
  default     = 8
  validation {
    condition     = var.einvoice_retention_years == floor(var.einvoice_retention_years) && var.einvoice_retention_years >= 1 && var.einvoice_retention_years <= 30
    error_message = "einvoice_retention_years must be a whole number of years from 1 to 30."
  }
}

variable "einvoice_retention_mode" {
  description = "Object Lock mode of the e-invoice files: GOVERNANCE (a principal with s3:BypassGovernanceRetention can still delete a file early) or COMPLIANCE (nobody, not even the account root, can until the lock ends)."
  type        = string
  default     = "GOVERNANCE"
  validation {
    condition     = contains(["GOVERNANCE", "COMPLIANCE"], var.einvoice_retention_mode)
    error_message = "einvoice_retention_mode must be GOVERNANCE or COMPLIANCE."
  }
}

variable "mail_domain" {
  description = "Domain the invoice e-mails are sent from: an SES identity with Easy DKIM, and the configuration set whose events reach mail-events. Null creates no SES resources (local-data: moto has no configuration-set event destinations)."
  type        = string
  default     = null
  validation {
    condition     = var.mail_domain == null || can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", var.mail_domain))
    error_message = "mail_domain must be a lower-case domain name such as beispiel-hosting.de."
  }
}

variable "mail_from" {
  description = "The sender address of the invoice e-mails (INVOICE_MAIL_FROM), an address of mail_domain; needed with mail_domain."
  type        = string
  default     = null
  validation {
    condition     = var.mail_from == null || can(regex("^[^@\\s<>\"]+@[^@\\s<>\"]+$", var.mail_from))
    error_message = "mail_from must be a bare e-mail address such as rechnung@beispiel-hosting.de (no display name)."
  }
}

variable "cost_export_bucket_name" {
  description = "Bucket of the FOCUS cost export (module cost_export), which AWS Data Exports writes encrypted with the data key; null (no export) grants Data Exports nothing."
  type        = string
  default     = null
}
