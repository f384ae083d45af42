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
  validation {
    condition     = can(regex("^[A-Za-z]{3}$", var.billing_currency))
    error_message = "billing_currency must be a three-letter ISO currency code such as eur."
  }
}

# --- pricing: the worker's invoices and billing-api's cost preview -----------------------------------

variable "fx_rate" {
  description = "Optional manual override, invoice-currency units per USD (FX_RATE). Leave unset (null): each billed month is converted at the ECB reference rate of its last TARGET working day, stored once per period."
  type        = string
  default     = null
  validation {
    condition     = var.fx_rate == null || (can(regex("^[0-9]+(\\.[0-9]+)?$", var.fx_rate)) && try(tonumber(var.fx_rate) > 0, false))
    error_message = "fx_rate must be unset or a decimal number greater than 0, such as 0.9215."
  }
}

variable "fx_source" {
  description = "Where a manual fx_rate comes from (FX_SOURCE); only with fx_rate."
  type        = string
  default     = null
}

variable "fx_date" {
  description = "The date a manual fx_rate applies to, YYYY-MM-DD (FX_DATE); only with fx_rate."
  type        = string
  default     = null
  validation {
    condition     = (var.fx_date == null) == (var.fx_rate == null) && (var.fx_date == null || (can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.fx_date)) && can(formatdate("YYYY-MM-DD", "${var.fx_date}T00:00:00Z"))))
    error_message = "fx_date goes with fx_rate: both unset, or a date such as 2024-11-29."
  }
}

variable "seller" {
  description = "The operator as the seller on every invoice (SELLER_*, SEPA_CREDITOR_ID; §14 UStG). The billing run refuses to start while a field an invoice needs is missing; give vat_id (USt-IdNr) or tax_number."
  type = object({
    name             = string
    street           = string
    postal_code      = string
    city             = string
    country          = optional(string, "DE")
    vat_id           = optional(string)
    tax_number       = optional(string)
    contact_name     = string
    contact_phone    = string
    contact_email    = string
    sepa_creditor_id = optional(string)
  })
  validation {
    condition     = var.seller.vat_id != null || var.seller.tax_number != null
    error_message = "seller needs vat_id (USt-IdNr) or tax_number (Steuernummer)."
  }
}

variable "base_fee" {
  description = "Monthly base fee per account in the invoice currency (BASE_FEE); an account's baseFeeOverride wins."
  type        = string
  default     = "20.00"
  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]{1,2})?$", var.base_fee))
    error_message = "base_fee must be an amount such as 20.00 (at most two decimals, not negative)."
  }
}

variable "markup_percent" {
  description = "Markup on the AWS costs in percent (MARKUP_PERCENT)."
  type        = string
  default     = "0"
  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]+)?$", var.markup_percent))
    error_message = "markup_percent must be a decimal number that is not negative, such as 10 or 7.5."
  }
}

variable "cost_group_by" {
  description = "Cost Explorer grouping (COST_GROUP_BY): SERVICE (the whole payer account), LINKED_ACCOUNT or TAG:<key> (per-account cost scopes)."
  type        = string
  default     = "SERVICE"
  validation {
    condition     = can(regex("^(SERVICE|LINKED_ACCOUNT|TAG:.+)$", var.cost_group_by))
    error_message = "cost_group_by must be SERVICE, LINKED_ACCOUNT or TAG:<key>."
  }
}

variable "invoice_language" {
  description = "Language of the invoice lines (INVOICE_LANGUAGE): de or en."
  type        = string
  default     = "de"
  validation {
    condition     = contains(["de", "en"], var.invoice_language)
    error_message = "invoice_language must be de or en."
  }
}

# --- cost source ---------------------------------------------------------------------------------------

variable "cost_source" {
  description = "Where the AWS costs come from (COST_SOURCE): cost-explorer (Cost Explorer's API) or focus (AWS Data Exports delivers FOCUS 1.2 files to a bucket of this stack; README \"The FOCUS cost export\")."
  type        = string
  default     = "cost-explorer"
  validation {
    condition     = contains(["cost-explorer", "focus"], var.cost_source)
    error_message = "cost_source must be cost-explorer or focus."
  }
}

variable "focus_engine" {
  description = "What aggregates the FOCUS export (FOCUS_ENGINE), with cost_source focus: duckdb (each task reads the files itself) or athena (a Glue table and an Athena workgroup are created too)."
  type        = string
  default     = "duckdb"
  validation {
    condition     = contains(["duckdb", "athena"], var.focus_engine)
    error_message = "focus_engine must be duckdb or athena."
  }
}

variable "focus_athena_bytes_scanned_cutoff_per_query" {
  description = "With focus_engine athena: Athena cancels a query that has scanned this many bytes (default 10 GiB; Athena's least is 10 MB)."
  type        = number
  default     = 10 * 1024 * 1024 * 1024
}

# --- VAT: the worker's invoices (billing-api gets the same) ----------------------------------------

variable "tax_mode" {
  description = "VAT on the invoices (TAX_MODE): rates (a Stripe Tax Rate of vat_rate on every taxed line), stripe-tax (Stripe Tax computes it) or small-business (§ 19 UStG: no VAT, with its legend)."
  type        = string
  default     = "rates"
  validation {
    condition     = contains(["rates", "stripe-tax", "small-business"], var.tax_mode)
    error_message = "tax_mode must be rates, stripe-tax or small-business."
  }
}

variable "vat_rate" {
  description = "The German VAT rate in percent (VAT_RATE), used with tax_mode rates."
  type        = string
  default     = "19"
  validation {
    condition     = can(regex("^[0-9]{1,2}(\\.[0-9]{1,2})?$", var.vat_rate)) && try(tonumber(var.vat_rate) > 0, false)
    error_message = "vat_rate must be a percentage above 0 and below 100 with at most two decimals, such as 19 or 7."
  }
}

# --- e-invoice files ---------------------------------------------------------------------------------

variable "einvoice_retention_years" {
  description = "Legal keeping period of the e-invoice files in years (§ 14b UStG: eight since 2025); Object Lock keeps each file one year longer, as the period starts at the end of the invoice's year."
  type        = number
  default     = 8
}

variable "einvoice_retention_mode" {
  description = "Object Lock mode of the e-invoice files: GOVERNANCE (s3:BypassGovernanceRetention can delete early) or COMPLIANCE (nobody can, not even the account root, for the whole lock)."
  type        = string
  default     = "GOVERNANCE"
}

# --- scheduler-worker -------------------------------------------------------------------------------

variable "billing_cron" {
  description = "When the worker starts the billing run for the previous month (BILLING_CRON; five-field cron, UTC)."
  type        = string
  default     = "0 0 1 * *"
  validation {
    condition     = length(regexall("\\S+", var.billing_cron)) == 5
    error_message = "billing_cron must be a five-field cron expression such as \"0 0 1 * *\"."
  }
}

variable "stripe_max_requests_per_second" {
  description = "Stripe requests per second all worker tasks together make at most for invoice jobs; each task gets its share of worker_max_count (Stripe allows 100 in live mode)."
  type        = number
  default     = 80
  validation {
    condition     = var.stripe_max_requests_per_second > 0 && var.stripe_max_requests_per_second <= 100
    error_message = "stripe_max_requests_per_second must be greater than 0 and at most Stripe's 100."
  }
}

# --- invoice e-mail (SES) -----------------------------------------------------------------------------

variable "mail_domain" {
  description = "Domain the invoices are e-mailed from: an SES identity with Easy DKIM (publish its records, README \"E-mail (SES)\")."
  type        = string
}

variable "invoice_mail_from" {
  description = "Sender address of the invoice e-mails (INVOICE_MAIL_FROM), an address of mail_domain. Null: rechnung@<mail_domain>."
  type        = string
  default     = null
}

variable "invoice_mail_from_name" {
  description = "Display name of the sender (INVOICE_MAIL_FROM_NAME). Null: the seller's name."
  type        = string
  default     = null
}

variable "invoice_mail_reply_to" {
  description = "Optional Reply-To address of the invoice e-mails (INVOICE_MAIL_REPLY_TO), e.g. the accounting mailbox; null sets none."
  type        = string
  default     = null
  validation {
    condition     = var.invoice_mail_reply_to == null || can(regex("^[^@\\s<>\"]+@[^@\\s<>\"]+$", var.invoice_mail_reply_to))
    error_message = "invoice_mail_reply_to must be unset or a bare e-mail address."
  }
}

variable "ses_max_send_rate" {
  description = "E-mails per second all worker tasks together send at most: the account's SES maximum sending rate (1 in the SES sandbox; often 14 after production access). Each task gets its share of worker_max_count (SES_MAX_SEND_RATE)."
  type        = number
  default     = 1
  validation {
    condition     = var.ses_max_send_rate > 0
    error_message = "ses_max_send_rate must be greater than 0."
  }
}

# --- billing-api ------------------------------------------------------------------------------------

variable "page_language" {
  description = "Default language of the admin page (PAGE_LANGUAGE): de or en."
  type        = string
  default     = "de"
  validation {
    condition     = contains(["de", "en"], var.page_language)
    error_message = "page_language must be de or en."
  }
}
