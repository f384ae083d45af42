variable "name_prefix" {
  description = "Prefix of every physical name."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "vpc_cidr_block" {
  description = "The VPC's address range (the load balancer talks only to targets inside it)."
  type        = string
}

variable "subnet_ids" {
  description = "Public subnets, one per zone."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate of the public host name."
  type        = string
}

variable "access_log_bucket" {
  description = "S3 bucket (name) that receives the access logs."
  type        = string
}

variable "deletion_protection" {
  description = "Protect the load balancer from deletion."
  type        = bool
  default     = true
}

variable "api_port" {
  description = "Container port of billing-api."
  type        = number
  default     = 8000
}

variable "webhook_port" {
  description = "Container port of webhook-receiver."
  type        = number
  default     = 8001
}
