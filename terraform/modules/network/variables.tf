variable "name_prefix" {
  description = "Prefix of every physical name."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's address range."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Two or more zones; one public and one private subnet each."
  type        = list(string)
}

variable "flow_log_bucket_arn" {
  description = "S3 bucket (ARN) that receives the VPC flow logs."
  type        = string
}
