output "service_name" {
  description = "The ECS service."
  value       = aws_ecs_service.this.name
}

output "task_role_arn" {
  description = "The task role (what the application may do)."
  value       = aws_iam_role.task.arn
}

output "log_group_name" {
  description = "The service's log group."
  value       = aws_cloudwatch_log_group.this.name
}
