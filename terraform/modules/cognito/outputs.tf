output "user_pool_id" {
  description = "The services' COGNITO_USER_POOL_ID."
  value       = aws_cognito_user_pool.admins.id
}

output "user_pool_arn" {
  description = "ARN of the admins' user pool."
  value       = aws_cognito_user_pool.admins.arn
}

output "client_id" {
  description = "The services' COGNITO_CLIENT_ID."
  value       = aws_cognito_user_pool_client.billing_page.id
}

output "admin_group" {
  description = "The services' ADMIN_GROUP."
  value       = aws_cognito_user_group.admin.name
}

output "hosted_ui_domain" {
  description = "Domain prefix of the hosted UI."
  value       = aws_cognito_user_pool_domain.hosted_ui.domain
}

output "operator_group" {
  description = "The services' OPERATOR_GROUP."
  value       = aws_cognito_user_group.operator.name
}
