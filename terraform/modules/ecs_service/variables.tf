variable "name" {
  description = "Service name: billing-api, webhook-receiver or scheduler-worker."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every physical name."
  type        = string
}

variable "cluster_arn" {
  description = "The ECS cluster."
  type        = string
}

variable "image" {
  description = "Container image (repository:tag or @digest)."
  type        = string
}

variable "cpu" {
  description = "Task CPU units (256 = 0.25 vCPU)."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Task memory in MiB."
  type        = number
  default     = 512
}

variable "desired_count" {
  description = "Number of tasks (the worker's autoscaling moves it between its bounds)."
  type        = number
  default     = 1
}

variable "container_port" {
  description = "Port the container listens on; null for a service without a load balancer."
  type        = number
  default     = null
}

variable "target_group_arn" {
  description = "Load balancer target group; null for a service without one."
  type        = string
  default     = null
}

variable "alb_security_group_id" {
  description = "The load balancer's security group: the only source the task accepts traffic from."
  type        = string
  default     = null
}

variable "environment" {
  description = "Environment variables (settings, never secrets: the app reads Secrets Manager itself)."
  type        = map(string)
  default     = {}
}

variable "health_check_command" {
  description = "Container health check, exec form."
  type        = list(string)
}

variable "task_policy_json" {
  description = "The least-privilege IAM policy of the task role."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "log_kms_key_arn" {
  description = "KMS key of the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days the logs are kept."
  type        = number
  default     = 365
}
