variable "name_prefix" {
  description = "Prefix of every physical name, e.g. \"prod-\"."
  type        = string
}

variable "bucket_name" {
  description = "Name of the export's bucket. Given, not derived here: the data key's policy (module data) names the bucket before it exists."
  type        = string
}

variable "kms_key_arn" {
  description = "The data key (module data): encrypts the export's files and the Athena query results."
  type        = string
}

variable "athena_enabled" {
  description = "Also create the Glue table over the export and an Athena workgroup (FOCUS_ENGINE=athena); false reads the files directly (duckdb)."
  type        = bool
  default     = false
}

variable "athena_bytes_scanned_cutoff_per_query" {
  description = "Athena cancels a query of the workgroup once it has scanned this many bytes (Athena's least is 10 MB)."
  type        = number
  default     = 10 * 1024 * 1024 * 1024
  validation {
    condition     = var.athena_bytes_scanned_cutoff_per_query >= 10000000
    error_message = "athena_bytes_scanned_cutoff_per_query must be at least 10000000 (10 MB), Athena's least."
  }
}
