variable "name_prefix" {
  description = "Prefix of every physical name."
  type        = string
}

variable "domain_prefix" {
  description = "Hosted UI domain prefix: https://<prefix>.auth.<region>.amazoncognito.com (globally unique)."
  type        = string
}

variable "callback_urls" {
  description = "Where the hosted UI may send the admin after sign-in (the Billing page)."
  type        = list(string)
}

variable "logout_urls" {
  description = "Where the hosted UI may send the admin after sign-out."
  type        = list(string)
}

variable "admin_group" {
  description = "Group whose members may use the Billing tab (the services' ADMIN_GROUP)."
  type        = string
  default     = "admin"
}

variable "deletion_protection" {
  description = "Protect the user pool from deletion."
  type        = bool
  default     = true
}

variable "operator_group" {
  description = "Group whose members may use the operator API and page (the services' OPERATOR_GROUP)."
  type        = string
  default     = "operator"
}
