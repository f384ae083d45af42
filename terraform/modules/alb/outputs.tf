output "security_group_id" {
  description = "The load balancer's security group (the tasks accept traffic only from it)."
  value       = aws_security_group.alb.id
}

output "dns_name" {
  description = "Point the public host name (CNAME or alias) here."
  value       = aws_lb.this.dns_name
}

output "zone_id" {
  description = "Hosted zone of the load balancer, for a Route 53 alias record."
  value       = aws_lb.this.zone_id
}

output "api_target_group_arn" {
  description = "Target group of billing-api."
  value       = aws_lb_target_group.api.arn
}

output "webhook_target_group_arn" {
  description = "Target group of webhook-receiver."
  value       = aws_lb_target_group.webhook.arn
}

output "arn_suffix" {
  description = "For CloudWatch metrics of the load balancer."
  value       = aws_lb.this.arn_suffix
}
